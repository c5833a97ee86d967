package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/qdrant/go-client/qdrant"
)

// Envelope is the one type that flows along the DAG's edges. Payload is one
// of the message types below.
type Envelope struct {
	From    string // id of the node that sent it
	Payload any
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

// RowBlock carries rows [Start, Start+N) of one source.
type RowBlock struct {
	Source string
	Start  int64
	N      int
	// Vectors by column ("" for npy), each N*width float32 values.
	Vectors map[string][]float32
	// Payloads has N entries when the source supplies payload.
	Payloads []map[string]*qdrant.Value
	// IDs has N entries when the source supplies the id column.
	IDs []*qdrant.PointId
	// Release, if set, returns the block's buffers for reuse. It is called
	// once, when nothing references the block any more.
	Release func()
}

// Batch is one upsert request's worth of points.
type Batch struct {
	Seq    int64 // batch number from 0
	Start  int64 // first row
	Points []*qdrant.PointStruct
	// Release, if set, is called once the batch is acknowledged (or
	// abandoned): the points' vectors share buffers that are then reused.
	Release func()
}

// Done releases the batch's buffers, if any.
func (b *Batch) Done() {
	if b.Release != nil {
		b.Release()
		b.Release = nil
	}
}

// UpsertDone says every batch is acknowledged.
type UpsertDone struct{ Points int64 }

// SnapshotReady names the created snapshot.
type SnapshotReady struct {
	Name     string
	Size     int64
	Checksum string
}

// Stage is one node's behaviour. Run consumes its inputs until they are
// closed (or ctx ends) and returns; it must not close channels. The runner
// closes a stage's outputs after Run returns.
type Stage interface {
	Run(ctx context.Context, io StageIO) error
}

// StageIO connects a stage to its neighbours.
type StageIO struct {
	// In holds one channel per upstream node, by node id.
	In  map[string]<-chan Envelope
	out []chan<- Envelope
	id  string
}

// Emit sends payload to every downstream node, giving up when ctx ends.
func (s StageIO) Emit(ctx context.Context, payload any) error {
	env := Envelope{From: s.id, Payload: payload}
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

// Recv reads one envelope from upstream id; ok is false when it is closed.
func (s StageIO) Recv(ctx context.Context, id string) (Envelope, bool, error) {
	select {
	case e, ok := <-s.In[id]:
		return e, ok, nil
	case <-ctx.Done():
		return Envelope{}, false, ctx.Err()
	}
}

// Runtime is what stages share during one run.
type Runtime struct {
	Config   *Config
	State    *StateFile
	Log      *slog.Logger
	Events   Events
	HTTP     *http.Client
	Qdrant   *qdrant.Client
	RESTBase string // Qdrant REST base URL
	CacheDir string
	// Summary collects the run's results.
	Summary   *Summary
	summaryMu sync.Mutex
	// InFlight, when set, is the context of upsert requests already sent:
	// it outlives the run's context by a grace period after an interrupt,
	// so acknowledged work is recorded before exit.
	InFlight context.Context
	// ConfirmRecreate is asked before a collection holding points is
	// dropped; nil refuses.
	ConfirmRecreate func(collection string, points uint64) error
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

// Registry maps stage kinds to factories.
type Registry struct{ factories map[string]Factory }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds a kind; registering a kind twice panics.
func (r *Registry) Register(kind string, f Factory) {
	if _, dup := r.factories[kind]; dup {
		panic(fmt.Sprintf("pipeline: stage kind %q registered twice", kind))
	}
	r.factories[kind] = f
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string { return SortedKeys(r.factories) }

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
