package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/half"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Message is what flows along the DAG's edges. MessageKind names the
// message type; what a stage kind consumes and emits is declared with its
// registration (Ports) and every edge is checked when the plan is compiled
// against the registry (Registry.Check).
type Message interface{ MessageKind() string }

// Message kinds.
const (
	MsgFile         = "file"          // *FileReady
	MsgSourceHeader = "source-header" // *SourceHeader
	MsgRows         = "rows"          // *RowBlock
	MsgBatchPlan    = "batch-plan"    // *BatchPlan
	MsgBatch        = "batch"         // *Batch
	MsgUpsertDone   = "upsert-done"   // *UpsertDone
	MsgSnapshot     = "snapshot"      // *SnapshotReady
	MsgSnapshotFile = "snapshot-file" // *SnapshotFile
)

// SnapshotFile is a verified snapshot at its destination (fetch emits it
// for restore stages).
type SnapshotFile struct {
	Name   string
	Path   string // local file, or empty
	Bucket string // S3 destination
	Key    string
	Size   int64
	SHA256 string
	Points int64
	// Cluster: Path (or Bucket/Key) is a cluster manifest whose shard
	// files lie beside it.
	Cluster bool
}

func (*SnapshotFile) MessageKind() string { return MsgSnapshotFile }

func (*FileReady) MessageKind() string     { return MsgFile }
func (*SourceHeader) MessageKind() string  { return MsgSourceHeader }
func (*RowBlock) MessageKind() string      { return MsgRows }
func (*BatchPlan) MessageKind() string     { return MsgBatchPlan }
func (*Batch) MessageKind() string         { return MsgBatch }
func (*UpsertDone) MessageKind() string    { return MsgUpsertDone }
func (*SnapshotReady) MessageKind() string { return MsgSnapshot }

// Envelope carries a message and the id of the node that sent it.
type Envelope struct {
	From string
	Msg  Message
}

// FileReady says a source's bytes are available locally (sent by download).
type FileReady struct {
	Source string
	Path   string
	Size   int64
	// Complete is false when only a prefix was fetched (row limit).
	Complete bool
	// FullSize is the whole file's size when only a prefix is at Path.
	FullSize int64
	// URL is set instead of Path when the decoder reads the remote file
	// directly with HTTP Range requests (Parquet under a row limit).
	URL string
	// Shard is the shard index (shard sets; 0 for a single file).
	Shard int
	// Stream is set instead of Path when the file is still downloading:
	// the decoder reads it as it grows and waits for its verification
	// (Stream.Wait) before it finishes.
	Stream *Stream
}

// SourceHeader is the first message of a decode node: what the file holds.
type SourceHeader struct {
	Source string
	Rows   int64          // rows in the file
	Widths map[string]int // vector width by column ("" for npy)
	// Columns are the payload columns the file has, in file order.
	Columns []string
	// Describe is a one-line description for errors ("npy <f2 (1000, 768)").
	Describe string
}

// Floats returns column col as float32 values, converting a Half column
// (for tests and diagnostics; the sink converts while it encodes).
func (b *RowBlock) Floats(col string) []float32 {
	if h, ok := b.Half[col]; ok {
		out := make([]float32, len(h)/2)
		half.LittleEndian(out, h)
		return out
	}
	if r, ok := b.Runs[col]; ok {
		return r.Floats()
	}
	return b.Vectors[col]
}

// Done returns the block's buffers for reuse — its Release, and its
// payload's values — once nothing references the block any more.
func (b *RowBlock) Done() {
	if b.Release != nil {
		b.Release()
		b.Release = nil
	}
	b.Payload.Release()
}

// PointID is a point's id: Num, or the UUID when UUID is not empty.
type PointID struct {
	Num  uint64
	UUID string
}

// String is the id as a user wrote it: the number, or the UUID.
func (id PointID) String() string {
	if id.UUID != "" {
		return id.UUID
	}
	return strconv.FormatUint(id.Num, 10)
}

// Payload values are plain Go values, whatever the source and the sink:
// nil, bool, int64, float64, string, []any and map[string]any (nested),
// kept by column in a PayloadBlock (scalars unboxed, see Value). Only the
// sink stage turns them into its own types.

// RowBlock carries rows [Start, Start+N) of one source.
type RowBlock struct {
	Source string
	Start  int64
	N      int
	// Vectors by column ("" for array formats), each N*width float32 values.
	Vectors map[string][]float32
	// Half holds columns kept as little-endian float16 (2*N*width bytes)
	// instead of Vectors: a column is in one map or the other. The sink
	// converts them as it encodes (see Floats).
	Half map[string][]byte
	// Runs holds columns whose rows the block borrows in runs, as
	// little-endian float32 bytes (a reader's decoded pages), instead of
	// Vectors: a column is in one of the three maps.
	Runs map[string]*Runs
	// Payload has N rows when the source supplies payload.
	Payload *PayloadBlock
	// IDs has N entries when the source supplies the id column.
	IDs []PointID
	// Multi holds multi-dense (token) vector columns by column name.
	Multi map[string]*MultiColumn
	// Sparse holds sparse vectors by their indices/values column pair.
	Sparse map[SparsePair]*SparseColumn
	// NonFinite, for the Vectors columns a reader looked through for NaN
	// and ±Inf as it read them, is the index in Vectors[col] of the first
	// such value, -1 when there is none: the decode stage does not look
	// through those columns again. A column not in it is looked through
	// there.
	NonFinite map[string]int
	// Release, if set, returns the block's buffers for reuse. It is called
	// once, when nothing references the block any more.
	Release func()
}

// MultiColumn holds the multi-dense vectors of consecutive rows: row i's
// tokens are Data[Offsets[i]*Width : Offsets[i+1]*Width], every token Width
// components (Offsets has one entry more than there are rows; every row has
// at least one token).
type MultiColumn struct {
	Width   int
	Data    []float32
	Offsets []int
}

// Tokens returns row i's token count.
func (m *MultiColumn) Tokens(i int) int { return m.Offsets[i+1] - m.Offsets[i] }

// Row returns row i's components (Tokens(i) × Width values).
func (m *MultiColumn) Row(i int) []float32 {
	return m.Data[m.Offsets[i]*m.Width : m.Offsets[i+1]*m.Width]
}

// SparsePair names the two list columns of a sparse vector.
type SparsePair struct{ Indices, Values string }

// SparseColumn holds the sparse vectors of consecutive rows: row i is
// Indices[Offsets[i]:Offsets[i+1]] with the Values at the same positions
// (an empty range is an empty sparse vector). Indices are unique in a row.
type SparseColumn struct {
	Indices []uint32
	Values  []float32
	Offsets []int
}

// Row returns row i's indices and values.
func (s *SparseColumn) Row(i int) ([]uint32, []float32) {
	a, b := s.Offsets[i], s.Offsets[i+1]
	return s.Indices[a:b], s.Values[a:b]
}

// NamedVector is one vector name's values for every point of a batch:
// N*Width float32, point i at [i*Width, (i+1)*Width), or, when Half is set
// instead, N*Width little-endian float16 (2 bytes each), or, when Runs is
// set instead, N rows of little-endian float32 in runs. It shares the row
// blocks' memory (no copy).
type NamedVector struct {
	Name  string
	Width int
	Data  []float32
	Half  []byte
	Runs  *Runs
}

// Point returns point i's values as float32 (converting Half and Runs).
func (v *NamedVector) Point(i int) []float32 {
	switch {
	case v.Half != nil:
		out := make([]float32, v.Width)
		half.LittleEndian(out, v.Half[2*i*v.Width:2*(i+1)*v.Width])
		return out
	case v.Runs != nil:
		return appendLE(make([]float32, 0, v.Width), v.Runs.Row(i))
	}
	return v.Data[i*v.Width : (i+1)*v.Width]
}

// Rows returns how many points' values v holds.
func (v *NamedVector) Rows() int {
	switch {
	case v.Width <= 0:
		return 0
	case v.Half != nil:
		return len(v.Half) / (2 * v.Width)
	case v.Runs != nil:
		return v.Runs.Rows()
	}
	return len(v.Data) / v.Width
}

// NamedMulti is one multi-dense vector name's values for the points of a
// batch (point i is Col.Row(i)).
type NamedMulti struct {
	Name string
	Col  *MultiColumn
}

// NamedSparse is one sparse vector name's values for the points of a batch
// (point i is Col.Row(i)).
type NamedSparse struct {
	Name string
	Col  *SparseColumn
}

// Batch is one upsert request's worth of points, column by column and
// sink-neutral: point i has id IDs[i] (or Start+i when IDs is nil), the
// vectors Vectors[k].Data[i*Width:(i+1)*Width] and payload row i of
// Payload (none when Payload is nil).
type Batch struct {
	Seq     int64 // batch number from 0
	Start   int64 // first row
	N       int   // points
	IDs     []PointID
	Vectors []NamedVector // sorted by name
	// Multi and Sparse are the multi-dense and sparse vectors by name
	// (sorted by name; they share the row blocks' memory).
	Multi   []NamedMulti
	Sparse  []NamedSparse
	Payload *PayloadBlock
	// Release, if set, is called once the batch is acknowledged (or
	// abandoned): the vectors share buffers that are then reused.
	Release func()
}

// ID returns point i's id.
func (b *Batch) ID(i int) PointID {
	if b.IDs != nil {
		return b.IDs[i]
	}
	return PointID{Num: uint64(b.Start) + uint64(i)}
}

// Done releases the batch's buffers, if any.
func (b *Batch) Done() {
	if b.Release != nil {
		b.Release()
		b.Release = nil
	}
}

// BatchPlan is the batch stage's first message: the sources are aligned
// and Rows rows become points, in batches of the configured size.
type BatchPlan struct{ Rows int64 }

// UpsertDone says every batch is acknowledged.
type UpsertDone struct{ Points int64 }

// SnapshotReady names the created snapshot.
type SnapshotReady struct {
	Name     string
	Size     int64
	Checksum string
}

// Preflighter is a stage that can check, before any stage runs, what
// would make it fail later (a destination it cannot write). Run calls
// Preflight on every stage that has it and stops on any error.
type Preflighter interface {
	Preflight(ctx context.Context) error
}

// Stage is one node's behaviour. Run consumes its inputs until they are
// closed (or ctx ends) and returns; it must not close channels. The runner
// closes a stage's outputs after Run returns.
type Stage interface {
	Run(ctx context.Context, io StageIO) error
}

// StageIO connects a stage to its neighbours. A stage never names another
// stage: it reads its inputs (ids the engine assigned) and emits to every
// downstream node.
type StageIO struct {
	// In holds one channel per upstream node, by node id.
	In     map[string]<-chan Envelope
	out    []chan<- Envelope
	id     string
	ports  Ports
	failed func(node string) bool
}

// NewStageIO connects a stage to given channels (the runner wires them
// from the DAG; pipeline/stagetest uses it to run one stage alone).
func NewStageIO(id string, ports Ports, in map[string]<-chan Envelope, out chan<- Envelope) StageIO {
	return StageIO{In: in, out: []chan<- Envelope{out}, id: id, ports: ports}
}

// ErrUpstreamFailed is what Recv returns when an input closed because its
// stage failed. A stage just returns it: the runner reports the upstream's
// error as the cause, never this one.
var ErrUpstreamFailed = errors.New("upstream stage failed")

// Emit sends m to every downstream node, giving up when ctx ends. A message
// kind the stage did not declare is refused.
func (s StageIO) Emit(ctx context.Context, m Message) error {
	if m == nil || !slices.Contains(s.ports.Emits, m.MessageKind()) {
		return fmt.Errorf("internal: stage %s emitted %T, which its ports (emits %v) do not declare", s.id, m, s.ports.Emits)
	}
	env := Envelope{From: s.id, Msg: m}
	for _, ch := range s.out {
		select {
		case ch <- env:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Inputs returns the upstream ids, sorted.
func (s StageIO) Inputs() []string {
	out := make([]string, 0, len(s.In))
	for k := range s.In {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Input returns the one upstream id of a stage that has exactly one.
func (s StageIO) Input() (string, error) {
	if len(s.In) != 1 {
		return "", fmt.Errorf("internal: stage %s has %d inputs, expected 1", s.id, len(s.In))
	}
	return s.Inputs()[0], nil
}

// Recv reads one message from upstream id; ok is false when that input
// ended normally. An input closed by a failed stage gives
// ErrUpstreamFailed.
func (s StageIO) Recv(ctx context.Context, id string) (Message, bool, error) {
	select {
	case e, ok := <-s.In[id]:
		if !ok {
			if s.failed != nil && s.failed(id) {
				return nil, false, ErrUpstreamFailed
			}
			return nil, false, nil
		}
		return e.Msg, true, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// Receive reads one message of type T from upstream id. A message of
// another type is an error naming both, never a panic.
func Receive[T Message](ctx context.Context, s StageIO, id string) (T, bool, error) {
	var zero T
	m, ok, err := s.Recv(ctx, id)
	if err != nil || !ok {
		return zero, ok, err
	}
	t, isT := m.(T)
	if !isT {
		return zero, false, fmt.Errorf("internal: %s got %s (%T) from %s, expected %T", s.id, m.MessageKind(), m, id, zero)
	}
	return t, true, nil
}

// Runtime is what stages share during one run.
type Runtime struct {
	Config *config.Config
	// state is the checkpoint (SetCheckpoint); stages reach only their own
	// section of it (DownloadSection, UpsertSection, ...).
	state *StateFile
	// Resume is the checkpoint as the run found it, for decode and batch.
	Resume Resume
	// Layout is how the rows lie over files (shard sets); nil means one
	// file per source (LayoutOf gives the default).
	Layout *Layout
	// Version is snappipe's version (for the manifest).
	Version string
	// Mode is the run's mode (a partition shares the collection with
	// others: it never recreates it and tolerates a create race).
	Mode Mode
	// Partitions is the partition count finalize was told (0: unknown),
	// to name the partitions whose shards are incomplete.
	Partitions int
	Log        *slog.Logger
	Events     Events
	HTTP       *http.Client
	Qdrant     *qdrant.Client
	RESTBase   string // Qdrant REST base URL
	CacheDir   string
	// Summary collects the run's results.
	Summary   *Summary
	summaryMu sync.Mutex
	replay    atomic.Bool
	// InFlight, when set, is the context of upsert requests already sent:
	// it outlives the run's context by a grace period after an interrupt,
	// so acknowledged work is recorded before exit.
	InFlight context.Context
	// ConfirmRecreate is asked before a collection holding points is
	// dropped; nil refuses.
	ConfirmRecreate func(collection string, points uint64) error
}

// LayoutOf is the run's layout, or the plain one-file-per-source layout.
func (rt *Runtime) LayoutOf() *Layout {
	if rt.Layout != nil {
		return rt.Layout
	}
	return SingleLayout(rt.Config.Upload.BatchSize)
}

// SetCheckpoint binds the run's state file and copies what decode and
// batch need to resume.
func (rt *Runtime) SetCheckpoint(sf *StateFile) {
	rt.state = sf
	rt.Resume = ResumeFrom(sf.Snapshot())
}

// Summary is what a run reports at the end.
type Summary struct {
	PointsWritten  int64  `json:"points_written"`
	BatchesSent    int64  `json:"batches_sent"`
	BytesFetched   int64  `json:"bytes_fetched"`
	SnapshotName   string `json:"snapshot_name,omitempty"`
	SnapshotPath   string `json:"snapshot_path,omitempty"`
	SnapshotSize   int64  `json:"snapshot_size,omitempty"`
	SnapshotSHA256 string `json:"snapshot_sha256,omitempty"`
	Resumed        bool   `json:"resumed"`
}

// Factory builds a stage for a node. It must not touch the network or disk.
type Factory func(n *Node, rt *Runtime) (Stage, error)

// Ports declare the message kinds a stage kind consumes and emits.
type Ports struct {
	Consumes, Emits []string
}

type registration struct {
	ports Ports
	new   Factory
}

// Registry maps stage kinds to their ports and factories.
type Registry struct{ kinds map[string]registration }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]registration{}} }

// Register adds a kind; registering a kind twice panics.
func (r *Registry) Register(kind string, ports Ports, f Factory) {
	if _, dup := r.kinds[kind]; dup {
		panic(fmt.Sprintf("pipeline: stage kind %q registered twice", kind))
	}
	r.kinds[kind] = registration{ports: ports, new: f}
}

// Check verifies a plan against the registry: every node's kind exists, a
// node with inputs consumes something, and along every edge each kind the
// sender emits is one the receiver consumes.
func (r *Registry) Check(p *Plan) error {
	var problems []string
	for _, id := range p.Order {
		n := p.Nodes[id]
		reg, ok := r.kinds[n.Kind]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no stage registered for kind %q", id, n.Kind))
			continue
		}
		for _, up := range p.Graph.UpEdges(id) {
			ureg, ok := r.kinds[p.Nodes[up].Kind]
			if !ok {
				continue
			}
			for _, m := range ureg.ports.Emits {
				if !slices.Contains(reg.ports.Consumes, m) {
					problems = append(problems, fmt.Sprintf("edge %s -> %s: %s emits %s, which %s does not consume", up, id, p.Nodes[up].Kind, m, n.Kind))
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("plan does not type-check: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Events receives progress and lifecycle events. Implementations must be
// safe for concurrent use.
type Events interface {
	StageStarted(node string)
	StageFinished(node string, err error)
	Progress(node string, done, total int64, unit string)
}

// NopEvents ignores everything.
type NopEvents struct{}

func (NopEvents) StageStarted(string)                   {}
func (NopEvents) StageFinished(string, error)           {}
func (NopEvents) Progress(string, int64, int64, string) {}

// AddFetched counts bytes transferred from sources and the server.
// RequireReplay records that rows already loaded may come from bytes a
// download later dropped: however the run ends, apply clears the
// checkpoint's upsert progress so the next run loads every row again.
func (rt *Runtime) RequireReplay() { rt.replay.Store(true) }

// ReplayRequired reports whether RequireReplay was called.
func (rt *Runtime) ReplayRequired() bool { return rt.replay.Load() }

func (rt *Runtime) AddFetched(n int64) {
	if rt.Summary != nil && n > 0 {
		rt.summaryMu.Lock()
		rt.Summary.BytesFetched += n
		rt.summaryMu.Unlock()
	}
}

// UpdateSummary changes the summary under its lock.
func (rt *Runtime) UpdateSummary(f func(s *Summary)) {
	if rt.Summary == nil {
		return
	}
	rt.summaryMu.Lock()
	f(rt.Summary)
	rt.summaryMu.Unlock()
}
