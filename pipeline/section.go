package pipeline

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Section is one stage's part of the checkpoint. A stage reads and writes
// only its own section, handed to it by node (DownloadSection,
// UpsertSection, ...); the engine alone reads the whole state (resume,
// plan, status). The file layout is unchanged, so state files written
// before sections existed resume as they are.
type Section[T any] struct {
	sf  *StateFile
	get func(*State) *T
}

// Get returns a copy of the section.
func (s Section[T]) Get() T {
	s.sf.mu.Lock()
	defer s.sf.mu.Unlock()
	var out T
	b, _ := json.Marshal(s.get(&s.sf.s))
	json.Unmarshal(b, &out)
	return out
}

// Update changes the section and saves the state before returning.
func (s Section[T]) Update(f func(*T)) error {
	return s.sf.Update(func(st *State) { f(s.get(st)) })
}

// UpdateThrottled changes the section and saves at most every interval
// (see StateFile.UpdateThrottled).
func (s Section[T]) UpdateThrottled(interval time.Duration, f func(*T)) error {
	return s.sf.UpdateThrottled(interval, func(st *State) { f(s.get(st)) })
}

// Flush saves what is pending.
func (s Section[T]) Flush() error { return s.sf.Flush() }

func section[T any](rt *Runtime, n *Node, kind string, get func(*State) *T) (Section[T], error) {
	if err := mayRead(rt, n, kind); err != nil {
		return Section[T]{}, err
	}
	return Section[T]{sf: rt.state, get: get}, nil
}

// mayRead checks that node n, of kind, asks for its own kind's records.
func mayRead(rt *Runtime, n *Node, kind string) error {
	if n.Kind != kind {
		return fmt.Errorf("internal: node %s (%s) asked for the %s section", n.ID, n.Kind, kind)
	}
	if rt.state == nil {
		return fmt.Errorf("internal: no checkpoint in the runtime")
	}
	return nil
}

// DownloadSection is a download node's record of its source.
func DownloadSection(rt *Runtime, n *Node) (Section[DownloadState], error) {
	src := n.Source
	return section(rt, n, KindDownload, func(s *State) *DownloadState {
		if s.Downloads == nil {
			s.Downloads = map[string]*DownloadState{}
		}
		ds := s.Downloads[src]
		if ds == nil {
			ds = &DownloadState{Size: -1}
			s.Downloads[src] = ds
		}
		return ds
	})
}

// DownloadShardSection is a download node's record of one shard file
// (key: ShardKey(source, index)).
func DownloadShardSection(rt *Runtime, n *Node, key string) (Section[DownloadState], error) {
	return section(rt, n, KindDownload, func(s *State) *DownloadState {
		if s.Downloads == nil {
			s.Downloads = map[string]*DownloadState{}
		}
		ds := s.Downloads[key]
		if ds == nil {
			ds = &DownloadState{Size: -1}
			s.Downloads[key] = ds
		}
		return ds
	})
}

// DownloadShards is a download node's records of its shard files (keys
// ShardKey(source, index)), as copies.
func DownloadShards(rt *Runtime, n *Node) (map[string]DownloadState, error) {
	if err := mayRead(rt, n, KindDownload); err != nil {
		return nil, err
	}
	out := map[string]DownloadState{}
	prefix := n.Source + "#"
	rt.state.View(func(s *State) {
		for k, ds := range s.Downloads {
			if strings.HasPrefix(k, prefix) && ds != nil {
				out[k] = *ds
			}
		}
	})
	return out, nil
}

// CollectionSection is the upsert node's record of the collection set-up.
func CollectionSection(rt *Runtime, n *Node) (Section[CollectionState], error) {
	return section(rt, n, KindUpsert, func(s *State) *CollectionState { return &s.Collection })
}

// UpsertSection is the upsert node's record of acknowledged batches.
func UpsertSection(rt *Runtime, n *Node) (Section[UpsertState], error) {
	return section(rt, n, KindUpsert, func(s *State) *UpsertState { return &s.Upsert })
}

// RestoreSection is a restore node's record of its target.
func RestoreSection(rt *Runtime, n *Node) (Section[RestoreState], error) {
	id := n.ID
	return section(rt, n, KindRestore, func(s *State) *RestoreState {
		if s.Restores == nil {
			s.Restores = map[string]*RestoreState{}
		}
		r := s.Restores[id]
		if r == nil {
			r = &RestoreState{}
			s.Restores[id] = r
		}
		return r
	})
}

// ClusterSnapshotSection is the cluster-snapshot node's record.
func ClusterSnapshotSection(rt *Runtime, n *Node) (Section[ClusterSnapshotState], error) {
	return section(rt, n, KindClusterSnapshot, func(s *State) *ClusterSnapshotState {
		if s.Cluster == nil {
			s.Cluster = &ClusterSnapshotState{}
		}
		return s.Cluster
	})
}

// SnapshotSection is the snapshot node's record.
func SnapshotSection(rt *Runtime, n *Node) (Section[SnapshotState], error) {
	return section(rt, n, KindSnapshot, func(s *State) *SnapshotState { return &s.Snapshot })
}

// FetchSection is the fetch node's record.
func FetchSection(rt *Runtime, n *Node) (Section[FetchState], error) {
	return section(rt, n, KindFetch, func(s *State) *FetchState { return &s.Fetch })
}

// Resume is what the engine read from the checkpoint when the run started,
// for the stages that only need to know where to start (decode, batch): a
// read-only copy, so no stage reads another's live section.
type Resume struct {
	batchSize int
	watermark int64
	above     []int64
	done      bool
	rows      int64
}

// ResumeFrom copies what decode and batch need from a state.
func ResumeFrom(st State) Resume {
	return Resume{batchSize: st.Upsert.BatchSize, watermark: st.Upsert.Watermark, above: slices.Clone(st.Upsert.Above), done: st.Upsert.Done, rows: st.Upsert.Rows}
}

// FirstRow is the first row a run must decode with batches of batchSize:
// the start of the first unacknowledged batch (0 when the size changed).
func (r Resume) FirstRow(batchSize int) int64 {
	if r.batchSize != batchSize {
		return 0
	}
	return r.watermark * int64(batchSize)
}

// Acked reports whether batch seq (of batchSize rows) was acknowledged.
func (r Resume) Acked(batchSize int, seq int64) bool {
	if r.batchSize != batchSize {
		return false
	}
	return UpsertState{Watermark: r.watermark, Above: r.above}.Acked(seq)
}

// AllLoaded reports whether every row was acknowledged, and how many.
func (r Resume) AllLoaded() (int64, bool) { return r.rows, r.done && r.rows >= 0 }
