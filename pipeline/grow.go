package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/snappipe/snappipe/pipeline/config"
)

// Growth is a checkpoint whose config now reaches further along the same
// row space: shards appended to a shard set (a range's last index raised,
// or new files a glob matches after the old ones), or a higher points.limit
// (or none), with every other key unchanged. The rows loaded before keep
// their ids (id: row is the global row index, shards in index order), so a
// run keeps their acknowledged batches, loads only the rows after them and
// takes a new snapshot, instead of refusing the checkpoint.
type Growth struct {
	// KeepBelow: batches below it are the old run's and stay acknowledged
	// (a batch the growth makes longer, the old last one cut by a limit or
	// by the end of the data, is loaded again: same ids, overwritten).
	KeepBelow int64
	// Kept is how many acknowledged batches stay; From and To say what
	// grew, for plan and the log.
	Kept     int64
	From, To string
}

// Text is what plan and apply say about it.
func (g *Growth) Text(path string) string {
	kept := fmt.Sprintf("its %d acknowledged batches stay, the rows after them are loaded", g.Kept)
	if g.Kept == 0 {
		kept = "no batch it acknowledged stays as it was (the last one grows), so every row is loaded again, overwriting the points by id"
	}
	return fmt.Sprintf("the checkpoint %s is this pipeline's over fewer rows (%s, now %s): %s, and a new snapshot is taken",
		path, g.From, g.To, kept)
}

// Grown reports whether fields (the config's, with the layout's) extend the
// state's at the end of its row space, and what stays of its progress. It
// is nil for any other change: those still need --full-refresh.
func Grown(st State, fields map[string]string, layout *Layout) *Growth {
	if !grownKeys(st, fields) {
		return nil
	}
	up := st.Upsert
	bs := int64(up.BatchSize)
	g := &Growth{}
	switch {
	case layout == nil || !layout.Sharded:
		if st.Layout != nil {
			return nil
		}
		// One file: the old rows are the first rows; a last batch the old
		// limit cut short is loaded again.
		if bs > 0 && up.Rows > 0 {
			g.KeepBelow = up.Rows / bs
		}
		g.From, g.To = "points.limit "+limitText(st.Fields["points.limit"]), "points.limit "+limitText(fields["points.limit"])
	default:
		old := st.Layout
		// (A finalize checkpoint has no batches: bs is 0.)
		if old == nil || len(old.Spans) == 0 || len(layout.Shards) < len(old.Spans) || bs > 0 && bs != int64(layout.BatchSize) {
			return nil
		}
		last := len(old.Spans) - 1
		for i, o := range old.Spans {
			s := layout.Shards[i]
			n := [4]int64{int64(s.Index), s.Start, s.Rows, s.FirstSeq}
			if i < last && n != o || i == last && (n[0] != o[0] || n[1] != o[1] || n[3] != o[3] || n[2] < o[2]) {
				return nil // not the same shards at the same rows: ids would move
			}
		}
		if o := old.Spans[last]; bs > 0 && o[2] >= 0 { // (negative: a state edited by hand)
			g.KeepBelow = o[3] + (o[2]+bs-1)/bs
			if layout.Shards[last].Rows > o[2] {
				g.KeepBelow = o[3] + o[2]/bs
			}
		}
		g.From = fmt.Sprintf("%d shards, %d rows", len(old.Spans), old.Rows)
		g.To = fmt.Sprintf("%d shards, %d rows", len(layout.Shards), layout.Rows)
	}
	g.Kept = min(up.Watermark, g.KeepBelow)
	for _, s := range up.Above {
		if s < g.KeepBelow {
			g.Kept++
		}
	}
	return g
}

// grownKeys: the state is intact and only keys that can grow changed,
// each by growing (the layout is checked span by span by Grown).
func grownKeys(st State, fields map[string]string) bool {
	if st.Fields == nil || HashFields(st.Fields) != st.ConfigHash {
		return false
	}
	for _, k := range ChangedKeys(st.Fields, fields) {
		old, cur := st.Fields[k], fields[k]
		switch {
		case k == "layout":
		case k == "points.limit":
			if !limitRaised(old, cur) {
				return false
			}
		case strings.HasPrefix(k, "sources."):
			if !config.RangeExtended(old, cur) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// MayGrow says, without reading any source (status), whether cfg differs
// from the state's config only by growing: a range's last index or the
// limit raised. apply then keeps the progress if the shards it loaded are
// unchanged, which only plan and apply can check.
func MayGrow(cfg *config.Config, st State) bool {
	return !ConfigMatches(cfg, st) && grownKeys(st, offlineFields(cfg, st))
}

// Apply moves the state to the grown config: the kept acknowledgements,
// the new identity, and no snapshot yet (the old one lacks the new rows).
func (g *Growth) Apply(s *State, hash string, fields map[string]string) {
	// Rows stays the old total until the upsert stage sets the new one:
	// the kept batches' rows are counted against it.
	up := UpsertState{BatchSize: s.Upsert.BatchSize, Rows: s.Upsert.Rows, Watermark: min(s.Upsert.Watermark, g.KeepBelow)}
	for _, q := range s.Upsert.Above {
		if q < g.KeepBelow {
			up.Above = append(up.Above, q)
		}
	}
	s.Upsert = up
	s.ConfigHash, s.Fields = hash, fields
	s.Snapshot, s.Fetch, s.Cluster, s.Restores = SnapshotState{}, FetchState{}, nil, nil
}

// limitRaised: the new limit is higher than the old one, or gone.
func limitRaised(old, cur string) bool {
	var o, c *int64
	if json.Unmarshal([]byte(old), &o) != nil || json.Unmarshal([]byte(cur), &c) != nil || o == nil {
		return false
	}
	return c == nil || *c > *o
}

func limitText(v string) string {
	if v == "null" || v == "" {
		return "none"
	}
	return v
}
