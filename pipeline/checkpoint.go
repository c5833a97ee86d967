package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/internal/s3up"
	"github.com/snappipe/snappipe/pipeline/config"
)

// StateVersion is the state file format version.
const StateVersion = 1

// State is the checkpoint of one pipeline. It holds no secrets.
type State struct {
	StateVersion int    `json:"state_version"`
	Pipeline     string `json:"pipeline"`
	// ConfigHash is the hash of the normalised config (secrets excluded);
	// Fields holds the normalised values, to say which keys changed.
	ConfigHash string            `json:"config_hash"`
	Fields     map[string]string `json:"config_fields"`
	UpdatedAt  time.Time         `json:"updated_at"`

	Downloads  map[string]*DownloadState `json:"downloads,omitempty"`
	Collection CollectionState           `json:"collection"`
	Upsert     UpsertState               `json:"upsert"`
	Snapshot   SnapshotState             `json:"snapshot"`
	Fetch      FetchState                `json:"fetch"`
	// Cluster records a cluster snapshot (snapshot.scope: cluster).
	Cluster *ClusterSnapshotState `json:"cluster_snapshot,omitempty"`
	// Restores records each restore target, by node id.
	Restores map[string]*RestoreState `json:"restores,omitempty"`
	// Layout is the shard layout the run loads (shard sets only).
	Layout *LayoutRecord `json:"layout,omitempty"`
	// ShardRows caches the row counts of url: shard files (by ShardKey).
	ShardRows map[string]*ShardRowsState `json:"shard_rows,omitempty"`
	// LastFailure is the error that ended the last run, until a run
	// succeeds (plan and status show it).
	LastFailure *Failure `json:"last_failure,omitempty"`
}

// ClusterSnapshotState tracks a cluster snapshot shard by shard.
type ClusterSnapshotState struct {
	Shards   map[string]*ShardSnapshotState `json:"shards,omitempty"` // by shard id
	Manifest string                         `json:"manifest,omitempty"`
	Done     bool                           `json:"done"`
	// Abandoned are shard uploads this checkpoint gave up (a new
	// snapshot, a shard snapshot taken again): the next run aborts them.
	Abandoned []AbandonedUpload `json:"s3_abandoned_uploads,omitempty"`
}

// Abandon returns the uploads a reset of this state gives up: those
// recorded before and every shard's upload in progress.
func (c *ClusterSnapshotState) Abandon() []AbandonedUpload {
	if c == nil {
		return nil
	}
	out := slices.Clone(c.Abandoned)
	for _, k := range SortedKeys(c.Shards) {
		out = append(out, c.Shards[k].Abandon()...)
	}
	return out
}

// reset is the state a new cluster snapshot starts from: nothing but
// the uploads this one gives up (nil when there are none).
func (c *ClusterSnapshotState) reset() *ClusterSnapshotState {
	if gone := c.Abandon(); len(gone) > 0 {
		return &ClusterSnapshotState{Abandoned: gone}
	}
	return nil
}

// HandOverUploads gives the S3 multipart uploads left by the snapshot
// stage of one snapshot.scope to the stage of the other, when only that
// one is in the plan (the scope changed): the fetch stage's (collection
// scope) to the cluster snapshot's record, or the other way round. The
// stage that runs aborts them with its own (its Abandoned list); each
// records the store it was started in. It reports whether it moved any.
func (s *State) HandOverUploads(fetch, cluster bool) bool {
	switch {
	case cluster && !fetch:
		gone := s.Fetch.Abandon()
		if len(gone) == 0 {
			return false
		}
		if s.Cluster == nil {
			s.Cluster = &ClusterSnapshotState{}
		}
		s.Cluster.Abandoned = append(s.Cluster.Abandoned, gone...)
		s.Fetch.Abandoned = nil
		if !s.Fetch.Done {
			s.Fetch.Upload, s.Fetch.Store = nil, nil
		}
		return true
	case fetch && !cluster && s.Cluster != nil:
		gone := s.Cluster.Abandon()
		if len(gone) == 0 {
			return false
		}
		s.Fetch.Abandoned = append(s.Fetch.Abandoned, gone...)
		s.Cluster.Abandoned = nil
		for _, sh := range s.Cluster.Shards {
			if len(sh.Abandon()) > 0 {
				sh.Upload, sh.UploadPath, sh.Store = nil, "", nil
			}
		}
		return true
	}
	return false
}

// ShardSnapshotState is one shard's snapshot: requested on its peer (the
// names listed before, so a resumed run finds its own instead of creating
// another), then downloaded and verified.
type ShardSnapshotState struct {
	Peer        string     `json:"peer"`
	RequestedAt *time.Time `json:"requested_at,omitempty"`
	Before      []string   `json:"existing_before_request,omitempty"`
	Name        string     `json:"name,omitempty"`
	Size        int64      `json:"size,omitempty"`
	Checksum    string     `json:"checksum,omitempty"`
	Points      uint64     `json:"points"`
	Path        string     `json:"path,omitempty"` // a file, or s3://BUCKET/KEY
	SHA256      string     `json:"sha256,omitempty"`
	Done        bool       `json:"done"`
	// Upload is the S3 multipart upload of an s3:// destination, to
	// UploadPath in Store (no credentials).
	Upload     *s3up.Progress `json:"s3_upload,omitempty"`
	UploadPath string         `json:"s3_upload_path,omitempty"`
	Store      *s3up.Options  `json:"s3_store,omitempty"`
}

// Abandon returns the shard's upload in progress, if any, as one to
// abort (one recorded before its path was: unknown, none).
func (s *ShardSnapshotState) Abandon() []AbandonedUpload {
	if s == nil || s.Done || s.Upload == nil || s.Upload.UploadID == "" || s.UploadPath == "" {
		return nil
	}
	return []AbandonedUpload{{Path: s.UploadPath, UploadID: s.Upload.UploadID, Store: s.Store}}
}

// RestoreState tracks one restore target.
type RestoreState struct {
	Target string `json:"target"` // redacted URL / collection
	SHA256 string `json:"sha256,omitempty"`
	Points int64  `json:"points,omitempty"`
	Done   bool   `json:"done"`
}

// Failure records a failed run.
type Failure struct {
	At         time.Time `json:"at"`
	Error      string    `json:"error"`
	RowsLoaded int64     `json:"rows_loaded"` // acknowledged rows when it failed
	Rows       int64     `json:"rows"`        // rows to load, -1 unknown
}

// Text says what a failed run left behind and how to go on.
func (f *Failure) Text(collection string) string {
	s := fmt.Sprintf("the last run failed at %s: %s", f.At.Format(time.RFC3339), f.Error)
	if f.RowsLoaded > 0 {
		s += fmt.Sprintf("\n  collection %q holds the first %d of %d rows' points; the checkpoint keeps them, so a run resumes after them", collection, f.RowsLoaded, f.Rows)
	}
	return s
}

// DownloadState tracks one url: source.
type DownloadState struct {
	URL      string `json:"url"`
	FinalURL string `json:"final_url,omitempty"`
	Size     int64  `json:"size"` // total size announced by the server, -1 unknown
	ETag     string `json:"etag,omitempty"`
	SHA256   string `json:"sha256,omitempty"` // of the complete file, once verified
	Bytes    int64  `json:"bytes_done"`
	// Prefix is true when only the first Bytes bytes were fetched on
	// purpose (row limit); a later run with a larger limit fetches more.
	Prefix bool `json:"prefix,omitempty"`
	Done   bool `json:"done"`
}

// CollectionState tracks collection setup.
type CollectionState struct {
	Ready bool `json:"ready"` // created/validated and indexes made
	// Created: this pipeline created the collection (new, or recreated),
	// so after the load it must hold exactly one point per row.
	Created bool `json:"created,omitempty"`
	// Indexes: the payload indexes changed since the collection was made
	// ready: apply creates the config's on it and deletes Drop (those the
	// old config had and this one has not), then clears both.
	Indexes bool `json:"sync_payload_indexes,omitempty"`
	// Update: collection.hnsw or collection.optimizers changed since the
	// collection was made ready: apply updates it in place, then clears it.
	Update       bool     `json:"update_collection,omitempty"`
	Drop         []string `json:"drop_payload_indexes,omitempty"`
	BulkHNSWM    *uint64  `json:"bulk_saved_hnsw_m,omitempty"`
	BulkApplied  bool     `json:"bulk_applied,omitempty"`
	BulkRestored bool     `json:"bulk_restored,omitempty"`
}

// UpsertState tracks acknowledged batches: every batch below Watermark is
// acknowledged, plus those listed in Above.
type UpsertState struct {
	BatchSize int     `json:"batch_size"`
	Rows      int64   `json:"rows"` // total rows to write, -1 before known
	Watermark int64   `json:"watermark"`
	Above     []int64 `json:"acked_above_watermark,omitempty"`
	Done      bool    `json:"done"`
}

// SnapshotState tracks snapshot creation.
type SnapshotState struct {
	RequestedAt *time.Time `json:"requested_at,omitempty"`
	// Before lists the snapshots that existed when this run asked, so a
	// resumed run can tell which one is its own.
	Before   []string `json:"existing_before_request,omitempty"`
	Name     string   `json:"name,omitempty"`
	Size     int64    `json:"size,omitempty"`
	Checksum string   `json:"checksum,omitempty"`
}

// FetchState tracks the snapshot download.
type FetchState struct {
	Path   string `json:"path,omitempty"` // a file, or s3://BUCKET/KEY
	SHA256 string `json:"sha256,omitempty"`
	Done   bool   `json:"done"`
	// Upload is an S3 multipart upload in progress (resumed by the next
	// run at its next part).
	Upload *s3up.Progress `json:"s3_upload,omitempty"`
	// Store is the S3 store Upload goes to (no credentials): an upload
	// left when the destination changes is aborted where it is.
	Store *s3up.Options `json:"s3_store,omitempty"`
	// Abandoned are multipart uploads of snapshots this checkpoint gave
	// up (a grown config or --full-refresh takes a new snapshot): the
	// next S3 fetch aborts them, so their parts are not kept (and billed)
	// until a bucket lifecycle rule removes them.
	Abandoned []AbandonedUpload `json:"s3_abandoned_uploads,omitempty"`
}

// AbandonedUpload is an S3 multipart upload no run will complete.
type AbandonedUpload struct {
	Path     string `json:"path"` // s3://BUCKET/KEY
	UploadID string `json:"upload_id"`
	// Store is where it is (nil in checkpoints written before it was
	// recorded: the configured store is assumed).
	Store *s3up.Options `json:"s3_store,omitempty"`
}

// Abandon returns the uploads a reset of this fetch state gives up: those
// recorded before and the one in progress.
func (f FetchState) Abandon() []AbandonedUpload {
	out := slices.Clone(f.Abandoned)
	if f.Upload != nil && f.Upload.UploadID != "" && !f.Done && strings.HasPrefix(f.Path, "s3://") {
		out = append(out, AbandonedUpload{Path: f.Path, UploadID: f.Upload.UploadID, Store: f.Store})
	}
	return out
}

// LeftFor returns the uploads a fetch to target aborts before it
// uploads: those given up, and the one in progress when it is for
// another object (the snapshot or the destination changed).
func (f FetchState) LeftFor(target string) []AbandonedUpload {
	if f.Path != target {
		return f.Abandon()
	}
	return f.Abandoned
}

// Acked reports whether batch seq is acknowledged.
func (u UpsertState) Acked(seq int64) bool {
	if seq < u.Watermark {
		return true
	}
	_, ok := slices.BinarySearch(u.Above, seq)
	return ok
}

// Ack records batch seq and advances the watermark over contiguous batches.
func (u *UpsertState) Ack(seq int64) {
	if u.Acked(seq) {
		return
	}
	i, _ := slices.BinarySearch(u.Above, seq)
	u.Above = slices.Insert(u.Above, i, seq)
	for len(u.Above) > 0 && u.Above[0] == u.Watermark {
		u.Above = u.Above[1:]
		u.Watermark++
	}
	if len(u.Above) == 0 {
		u.Above = nil
	}
}

// AckedCount is how many batches are acknowledged.
func (u UpsertState) AckedCount() int64 { return u.Watermark + int64(len(u.Above)) }

// AckedRows is how many rows the acknowledged batches hold (the points an
// interrupted or failed run left in the collection).
func (u UpsertState) AckedRows() int64 {
	if u.BatchSize < 1 || u.Rows <= 0 {
		return 0
	}
	bs := int64(u.BatchSize)
	n := u.AckedCount() * bs
	last := (u.Rows - 1) / bs
	if u.Acked(last) {
		n -= bs - (u.Rows - last*bs)
	}
	return min(n, u.Rows)
}

// StateFile is a State bound to its file, safe for concurrent use. Every
// write is atomic (temp, fsync, rename, fsync dir) and mode 0600.
type StateFile struct {
	Path string
	mu   sync.Mutex // guards s, last and cost
	s    State
	last time.Time
	// cost is how long the last save took (encoding, write, fsyncs); a
	// throttled update waits at least saveShare times that between saves,
	// so a state grown large (thousands of shards) cannot make saving
	// take more than a small share of the run.
	cost time.Duration
	// gen counts changes; saved is the gen the file holds. A save whose
	// change a concurrent save already wrote returns at once (group
	// commit): shards downloading side by side share their saves.
	gen, saved uint64
	// wmu serialises file writes, which happen outside mu so that an fsync
	// never stalls the callers that only change the state.
	wmu sync.Mutex
}

// StatePath is where a pipeline's state lives.
func StatePath(stateDir, name string) string {
	return filepath.Join(stateDir, name+".state.json")
}

// ErrUnusableState means a state file cannot be read (corrupt, or another
// version). apply --full-refresh moves it aside (*.corrupt) and starts over.
var ErrUnusableState = errors.New("unusable state")

// OpenState reads the state at path; a missing file gives a fresh state.
func OpenState(path string) (*StateFile, bool, error) {
	sf := &StateFile{Path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		sf.s = State{StateVersion: StateVersion, Upsert: UpsertState{Rows: -1}}
		return sf, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(b, &sf.s); err != nil {
		return nil, false, fmt.Errorf("%w: state file %s is corrupt (%v); remove it or run with --full-refresh", ErrUnusableState, path, err)
	}
	if sf.s.StateVersion != StateVersion {
		return nil, false, fmt.Errorf("%w: state file %s has version %d; this snappipe reads version %d (run with --full-refresh to start over)", ErrUnusableState, path, sf.s.StateVersion, StateVersion)
	}
	return sf, true, nil
}

// EmptyState is a fresh state bound to no file (plan uses it when apply
// would start over); it is never saved.
func EmptyState() *StateFile {
	return &StateFile{s: State{StateVersion: StateVersion, Upsert: UpsertState{Rows: -1}}}
}

// Reset discards everything but identity.
func (sf *StateFile) Reset(pipeline, hash string, fields map[string]string) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	sf.s = State{StateVersion: StateVersion, Pipeline: pipeline, ConfigHash: hash, Fields: fields, Upsert: UpsertState{Rows: -1}}
	sf.gen++
}

// Snapshot returns a deep copy of the state.
func (sf *StateFile) Snapshot() State {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	b, _ := json.Marshal(sf.s)
	var out State
	json.Unmarshal(b, &out)
	return out
}

// View calls f with the state under the lock, for reads that need a
// part of it: Snapshot copies the whole state, which with thousands of
// shards is megabytes. f must not keep what it is given.
func (sf *StateFile) View(f func(s *State)) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	f(&sf.s)
}

// Update changes the state and saves it before returning.
func (sf *StateFile) Update(f func(s *State)) error {
	sf.mu.Lock()
	f(&sf.s)
	sf.gen++
	mine := sf.gen
	sf.mu.Unlock()
	return sf.saveUpTo(mine)
}

// UpdateThrottled changes the state and saves it at most every interval;
// callers use it where losing the latest change only means redoing
// idempotent work. Flush saves what is pending.
func (sf *StateFile) UpdateThrottled(interval time.Duration, f func(s *State)) error {
	sf.mu.Lock()
	f(&sf.s)
	sf.gen++
	due := time.Since(sf.last) >= max(interval, saveShare*sf.cost)
	if due {
		sf.last = time.Now()
	}
	sf.mu.Unlock()
	if !due {
		return nil
	}
	return sf.save()
}

// saveShare: throttled saves are at least this many times their own
// duration apart (at most 1/20 of the time is spent saving).
const saveShare = 20

// Flush saves the current state.
func (sf *StateFile) Flush() error { return sf.save() }

// save writes the state as it is when the write starts; writes are
// serialised, so a later save always holds a newer state.
func (sf *StateFile) save() error {
	sf.mu.Lock()
	mine := sf.gen
	sf.mu.Unlock()
	return sf.saveUpTo(mine)
}

// saveUpTo saves unless the file already holds change gen.
func (sf *StateFile) saveUpTo(gen uint64) error {
	sf.wmu.Lock()
	defer sf.wmu.Unlock()
	start := time.Now()
	sf.mu.Lock()
	if sf.saved >= gen && gen > 0 {
		sf.mu.Unlock()
		return nil // a save that began after the change wrote it
	}
	writing := sf.gen
	sf.s.UpdatedAt = start.UTC()
	// Compact: with thousands of shards the state is megabytes, and
	// indenting it tripled the cost of every save (status --json prints
	// it indented).
	b, err := json.Marshal(&sf.s)
	sf.last = time.Now()
	sf.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(sf.Path), 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(sf.Path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	sf.mu.Lock()
	sf.cost, sf.saved = time.Since(start), max(sf.saved, writing)
	sf.mu.Unlock()
	return nil
}

// NormalizedFields flattens the parts of a config that decide what apply
// produces, secrets and run-time tuning excluded, as key path -> value.
func NormalizedFields(c *config.Config) map[string]string {
	out := map[string]string{}
	put := func(k string, v any) {
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	put("name", c.Name)
	put("collection.name", c.Collection.Name)
	for _, n := range SortedKeys(c.Collection.Vectors) {
		put("collection.vectors."+n, c.Collection.Vectors[n])
	}
	put("collection.shard_number", c.Collection.ShardNumber)
	put("collection.replication_factor", c.Collection.ReplicationFactor)
	put("collection.on_disk_payload", c.Collection.OnDiskPayload)
	put("collection.hnsw", c.Collection.HNSW)
	put("collection.optimizers", c.Collection.Optimizers)
	put("collection.payload_indexes", c.Collection.PayloadIndexes)
	// Keys added later are put only when set: older checkpoints keep their hash.
	if q := c.Collection.Quantization; q != nil {
		put("collection.quantization", q)
	}
	if w := c.Collection.WriteConsistencyFactor; w != nil {
		put("collection.write_consistency_factor", w)
	}
	if w := c.Collection.WAL; w != nil {
		put("collection.wal", w)
	}
	if len(c.Collection.Metadata) > 0 {
		put("collection.metadata", c.Collection.Metadata)
	}
	if sm := c.Collection.StrictMode; sm != nil {
		put("collection.strict_mode", sm)
	}
	for _, n := range SortedKeys(c.Collection.SparseVectors) {
		put("collection.sparse_vectors."+n, c.Collection.SparseVectors[n])
	}
	for _, n := range SortedKeys(c.Sources) {
		src := *c.Sources[n]
		if src.URL != "" {
			src.URL = config.RedactURL(src.URL) // no secret in the state file
		}
		put("sources."+n, src)
	}
	put("points.limit", c.Points.Limit)
	put("points.id", c.Points.ID.Column)
	for _, n := range SortedKeys(c.Points.Vectors) {
		put("points.vectors."+n, c.Points.Vectors[n])
	}
	put("points.payload", c.Points.Payload)
	put("upload.batch_size", c.Upload.BatchSize)
	put("upload.bulk", c.Upload.Bulk)
	return out
}

// ConfigMatches says, without reading any source, whether a state belongs
// to cfg: the layout a shard set had when the state was written is taken
// from the state (status cannot list the shards offline).
func ConfigMatches(cfg *config.Config, st State) bool {
	return st.ConfigHash == HashFields(offlineFields(cfg, st))
}

// offlineFields are cfg's fields with the layout (and partition) the state
// recorded: what can be known of them without listing the shards.
func offlineFields(cfg *config.Config, st State) map[string]string {
	f := NormalizedFields(cfg)
	for _, k := range []string{"layout", "partition"} {
		if v, ok := st.Fields[k]; ok {
			f[k] = v
		}
	}
	return f
}

// HashFields hashes normalised fields deterministically.
func HashFields(f map[string]string) string {
	h := sha256.New()
	for _, k := range SortedKeys(f) {
		fmt.Fprintf(h, "%s=%s\n", k, f[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ChangedKeys lists the keys whose values differ between two field sets.
func ChangedKeys(old, cur map[string]string) []string {
	var out []string
	for k, v := range cur {
		if old[k] != v {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
