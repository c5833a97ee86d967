package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/snappipe/snappipe/pipeline/config"
)

// Growth is a checkpoint a changed config can take over without losing
// what was loaded: the config reaches further along the same row space
// (shards appended to a shard set — a range's last index raised, or new
// files a glob matches after the old ones — or a higher points.limit, or
// none), or cuts the same rows into batches of another upload.batch_size,
// or both, with every other key unchanged. The rows loaded before keep
// their ids (id: row is the global row index, shards in index order), so a
// run keeps the rows acknowledged before, counted on the new batches, and
// loads the rest.
type Growth struct {
	// Upsert is the upsert progress the new config starts from: a batch
	// of the new size is acknowledged when every one of its rows was (a
	// batch the growth makes longer, the old last one cut by a limit, is
	// sent again: same ids, overwritten).
	Upsert UpsertState
	// Kept is how many rows that is, of Rows (-1: known once the sources
	// are open); Grew says whether rows were added (the snapshot then no
	// longer holds them all).
	Kept, Rows int64
	Grew       bool
	// Indexes: collection.payload_indexes changed; apply creates and
	// deletes them on the collection (Drop: those no longer in the config).
	Indexes bool
	Drop    []string
	// Update: collection.hnsw or collection.optimizers changed; apply
	// updates the collection in place.
	Update bool
	// From and To say what changed, for plan and the log.
	From, To string
}

// Text is what plan and apply say about it.
func (g *Growth) Text(path string) string {
	what := "this pipeline's over fewer rows"
	if !g.Grew {
		what = "this pipeline's with another batch size"
	}
	s := fmt.Sprintf("the checkpoint %s is %s (%s, now %s): ", path, what, g.From, g.To)
	if (g.Indexes || g.Update) && !g.Grew && g.From == g.To {
		var what []string
		if g.Indexes {
			what = append(what, "payload indexes")
		}
		if g.Update {
			what = append(what, "collection settings (HNSW, optimizers, quantization, on_disk, strict mode, metadata)")
		}
		return fmt.Sprintf("the checkpoint %s is this pipeline's with other %s: apply changes them on the collection, keeps every row it loaded and takes a new snapshot", path, strings.Join(what, " and "))
	}
	switch {
	case g.Kept > 0 && g.Kept == g.Rows:
		s += fmt.Sprintf("all %d rows it loaded stay, none is left to load", g.Kept)
	case g.Kept > 0:
		s += fmt.Sprintf("the %d rows it loaded stay, the rest is loaded", g.Kept)
	default:
		s += "none of the rows it loaded fills a whole batch as the rows are now cut, so every row is loaded again, overwriting the points by id"
	}
	if g.Indexes {
		s += "; the payload indexes are changed on the collection"
	}
	if g.Update {
		s += "; the collection settings (HNSW, optimizers, quantization, on_disk, strict mode, metadata) are updated in place"
	}
	if g.Grew || g.Indexes || g.Update {
		s += ", and a new snapshot is taken"
	}
	return s
}

// span is a shard's place in the row space: index, first global row, rows
// loaded, first batch.
type span = [4]int64

// Grown reports whether fields (the config's, with the layout's) can take
// over the state, and what stays of its progress. It is nil for any other
// change: those still need --full-refresh.
func Grown(st State, fields map[string]string, layout *Layout) *Growth {
	if !grownKeys(st, fields) || layout == nil {
		return nil
	}
	idx := "collection.payload_indexes"
	indexes, drop := st.Fields[idx] != fields[idx], []string(nil)
	if indexes {
		var old, cur map[string]string
		json.Unmarshal([]byte(st.Fields[idx]), &old)
		json.Unmarshal([]byte(fields[idx]), &cur)
		for _, f := range SortedKeys(old) {
			if _, ok := cur[f]; !ok {
				drop = append(drop, f)
			}
		}
	}
	up := st.Upsert
	obs, nbs := int64(up.BatchSize), int64(layout.BatchSize)
	update := false
	for _, k := range ChangedKeys(st.Fields, fields) {
		update = update || slices.Contains(updatable, k) || vectorSettingsOnly(k, st.Fields[k], fields[k])
	}
	g := &Growth{From: "batches of " + fmt.Sprint(obs), To: "batches of " + fmt.Sprint(nbs), Rows: -1, Indexes: indexes, Drop: drop, Update: update}
	var olds, news []span
	switch {
	case !layout.Sharded:
		if st.Layout != nil {
			return nil
		}
		// One file: its first rows. The new row count is known only once
		// the sources are open: unbounded when the limit changed.
		rows := int64(math.MaxInt64)
		if st.Fields["points.limit"] == fields["points.limit"] {
			rows, g.Rows = up.Rows, up.Rows
		} else {
			g.Grew = true
			g.From, g.To = "points.limit "+limitText(st.Fields["points.limit"]), "points.limit "+limitText(fields["points.limit"])
		}
		if up.Rows > 0 {
			olds, news = []span{{0, 0, up.Rows, 0}}, []span{{0, 0, rows, 0}}
		}
	default:
		old := st.Layout
		if old == nil || len(old.Spans) == 0 || len(layout.Shards) < len(old.Spans) {
			return nil
		}
		olds, g.Rows = old.Spans, layout.Rows
		for _, s := range layout.Shards {
			news = append(news, span{int64(s.Index), s.Start, s.Rows, s.FirstSeq})
		}
		last := len(olds) - 1
		for i, o := range olds {
			n := news[i]
			if n[0] != o[0] || n[1] != o[1] || o[2] < 0 || n[2] < o[2] || i < last && n[2] != o[2] {
				return nil // not the same shards at the same rows: ids would move
			}
		}
		if len(news) > len(olds) || news[last][2] > olds[last][2] {
			g.Grew = true
			g.From = fmt.Sprintf("%d shards, %d rows", len(olds), old.Rows)
			g.To = fmt.Sprintf("%d shards, %d rows", len(news), layout.Rows)
		}
	}
	if obs != nbs && obs > 0 && g.Grew {
		g.From += fmt.Sprintf(", batches of %d", obs)
		g.To += fmt.Sprintf(", batches of %d", nbs)
	}
	g.Upsert = UpsertState{BatchSize: int(nbs), Rows: up.Rows}
	if obs <= 0 || nbs <= 0 {
		return g // no batch acknowledged yet (or a finalize checkpoint)
	}
	for i, o := range olds {
		// The rows the old batches of this shard acknowledged, in order.
		var covered [][2]int64
		for b := int64(0); b*obs < o[2]; b++ {
			if !up.Acked(o[3] + b) {
				continue
			}
			lo, hi := b*obs, min((b+1)*obs, o[2])
			if k := len(covered) - 1; k >= 0 && covered[k][1] == lo {
				covered[k][1] = hi
			} else {
				covered = append(covered, [2]int64{lo, hi})
			}
		}
		// A new batch stays acknowledged when it lies inside those rows.
		n, c := news[i], 0
		for b := int64(0); b*nbs < o[2]; b++ {
			lo, hi := b*nbs, min((b+1)*nbs, n[2])
			for c < len(covered) && covered[c][1] <= lo {
				c++
			}
			if c < len(covered) && covered[c][0] <= lo && hi <= covered[c][1] {
				g.Upsert.Ack(n[3] + b)
				g.Kept += hi - lo
			}
		}
	}
	return g
}

// updatable are the collection settings a loaded collection is updated
// to in place (UpdateCollection), no point sent again.
var updatable = []string{"collection.hnsw", "collection.optimizers", "collection.quantization",
	"collection.write_consistency_factor", "collection.on_disk_payload", "collection.strict_mode", "collection.metadata"}

// vectorSettingsOnly reports whether key is a dense vector's
// (collection.vectors.NAME) whose old and new settings differ only in
// on_disk and quantization, which Qdrant updates in place (its size,
// distance, datatype and multivector cannot be).
func vectorSettingsOnly(key, old, cur string) bool {
	if !strings.HasPrefix(key, "collection.vectors.") || old == "" || cur == "" {
		return false
	}
	var a, b config.VectorConfig
	if json.Unmarshal([]byte(old), &a) != nil || json.Unmarshal([]byte(cur), &b) != nil {
		return false
	}
	a.OnDisk, a.Quantization, b.OnDisk, b.Quantization = nil, nil, nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// grownKeys: the state is intact and only keys that can be taken over
// changed, each as it may (the layout is checked span by span by Grown).
func grownKeys(st State, fields map[string]string) bool {
	if st.Fields == nil || HashFields(st.Fields) != st.ConfigHash {
		return false
	}
	for _, k := range ChangedKeys(st.Fields, fields) {
		old, cur := st.Fields[k], fields[k]
		switch {
		case k == "layout", k == "upload.batch_size", k == "collection.payload_indexes", slices.Contains(updatable, k), vectorSettingsOnly(k, old, cur):
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
// from the state's config only as Grown allows: a range's last index or
// the limit raised, the batch size. apply then keeps the progress if the
// shards it loaded are unchanged, which only plan and apply can check.
func MayGrow(cfg *config.Config, st State) bool {
	return !ConfigMatches(cfg, st) && grownKeys(st, offlineFields(cfg, st))
}

// Apply moves the state to the new config: the kept acknowledgements, the
// new identity, and, when rows were added, no snapshot yet (the old one
// lacks them).
func (g *Growth) Apply(s *State, hash string, fields map[string]string) {
	s.Upsert = g.Upsert
	s.Upsert.Above = append([]int64(nil), g.Upsert.Above...)
	s.ConfigHash, s.Fields = hash, fields
	if g.Indexes && s.Collection.Ready {
		s.Collection.Indexes = true
		for _, f := range g.Drop {
			if !slices.Contains(s.Collection.Drop, f) {
				s.Collection.Drop = append(s.Collection.Drop, f)
			}
		}
	}
	if g.Update && s.Collection.Ready {
		s.Collection.Update = true
	}
	if g.Grew || g.Indexes || g.Update {
		s.Snapshot, s.Fetch, s.Cluster, s.Restores = SnapshotState{}, FetchState{Abandoned: s.Fetch.Abandon()}, s.Cluster.reset(), nil
	}
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
