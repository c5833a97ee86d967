package pipeline

import (
	"maps"
	"testing"
	"time"
)

// growState is a checkpoint of shards 0 and 1 (30 + 20 rows, batches of 16)
// of ranges {0000..0001}: batches 0-2 acknowledged, 3 not.
func growState() (State, map[string]string) {
	f := map[string]string{
		"name":              `"p"`,
		"sources.image":     `{"url":"http://h/img_%7B0000..0001%7D.npy"}`,
		"sources.metadata":  `{"path":"meta_{0000..0001}.parquet"}`,
		"points.limit":      `null`,
		"upload.batch_size": `16`,
		"layout":            "2 shards",
	}
	now := time.Now()
	return State{
		ConfigHash: HashFields(f), Fields: f,
		Upsert:   UpsertState{BatchSize: 16, Rows: 50, Watermark: 3},
		Layout:   &LayoutRecord{AllShards: 2, Rows: 50, Spans: [][4]int64{{0, 0, 30, 0}, {1, 30, 20, 2}}},
		Snapshot: SnapshotState{Name: "old.snapshot", RequestedAt: &now},
		Fetch:    FetchState{Path: "out/old.snapshot", Done: true},
		Restores: map[string]*RestoreState{"restore.a": {Done: true}},
	}, f
}

func spans(s ...[4]int64) *Layout {
	l := &Layout{Sharded: true, BatchSize: 16}
	for _, v := range s {
		l.Shards = append(l.Shards, ShardSpan{Index: int(v[0]), Start: v[1], Rows: v[2], FileRows: v[2], FirstSeq: v[3]})
		l.Rows += v[2]
	}
	return l
}

func TestGrown(t *testing.T) {
	three := spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 20, 2}, [4]int64{2, 50, 25, 4})
	grown := func(f map[string]string) map[string]string {
		g := maps.Clone(f)
		g["sources.image"] = `{"url":"http://h/img_{0000..0002}.npy"}`
		g["sources.metadata"] = `{"path":"meta_{0000..0002}.parquet"}`
		g["layout"] = "3 shards"
		return g
	}
	st, f := growState()
	g := Grown(st, grown(f), three)
	if g == nil || g.KeepBelow != 4 || g.Kept != 3 || g.From != "2 shards, 50 rows" || g.To != "3 shards, 75 rows" {
		t.Fatalf("appended shard: %+v", g)
	}
	nf := grown(f)
	g.Apply(&st, HashFields(nf), nf)
	if st.ConfigHash != HashFields(nf) || st.Upsert.Watermark != 3 || st.Upsert.Done || st.Snapshot.Name != "" || st.Snapshot.RequestedAt != nil ||
		st.Fetch.Done || st.Restores != nil || st.Upsert.Rows != 50 {
		t.Fatalf("applied: %+v", st)
	}

	// A glob's new files change only the layout.
	st, f = growState()
	glob := maps.Clone(f)
	glob["layout"] = "3 shards"
	if g := Grown(st, glob, three); g == nil || g.KeepBelow != 4 {
		t.Fatalf("glob grown: %+v", g)
	}

	// The old last shard cut by a limit grows: its cut batch is sent again.
	st, f = growState()
	st.Fields["points.limit"] = `45`
	st.Layout.Spans[1] = [4]int64{1, 30, 15, 2}
	st.ConfigHash = HashFields(st.Fields)
	g = Grown(st, f, spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 20, 2}))
	if g == nil || g.KeepBelow != 2 || g.Kept != 2 || g.From != "2 shards, 50 rows" {
		t.Fatalf("raised limit: %+v", g)
	}
	g.Apply(&st, "h", f)
	if st.Upsert.Watermark != 2 || len(st.Upsert.Above) != 0 {
		t.Fatalf("raised limit applied: %+v", st.Upsert)
	}

	// One file: the batches the old limit filled stay.
	st, f = growState()
	st.Layout = nil
	st.Fields["points.limit"] = `40`
	st.Upsert = UpsertState{BatchSize: 16, Rows: 40, Watermark: 2, Above: []int64{4}}
	st.ConfigHash = HashFields(st.Fields)
	up := maps.Clone(f)
	up["points.limit"] = `100`
	if g := Grown(st, up, nil); g == nil || g.KeepBelow != 2 || g.Kept != 2 || g.From != "points.limit 40" || g.To != "points.limit 100" {
		t.Fatalf("one file: %+v", g)
	}

	// A finalize checkpoint (no batches of its own) grows too: it takes a
	// new snapshot.
	st, f = growState()
	st.Upsert = UpsertState{Rows: -1}
	if g := Grown(st, grown(f), three); g == nil || g.KeepBelow != 0 || g.Kept != 0 {
		t.Fatalf("finalize: %+v", g)
	}

	// A last span's rows edited to a negative count keep nothing (and
	// never a negative watermark).
	st, f = growState()
	st.Layout.Spans[1][2] = -100
	if g := Grown(st, grown(f), three); g != nil && (g.KeepBelow < 0 || g.Kept != 0) {
		t.Fatalf("negative rows: %+v", g)
	}

	refused := map[string]func(st *State, f map[string]string) *Layout{
		"an earlier shard's rows changed": func(st *State, f map[string]string) *Layout {
			return spans([4]int64{0, 0, 31, 0}, [4]int64{1, 31, 20, 2}, [4]int64{2, 51, 25, 4})
		},
		"fewer shards": func(st *State, f map[string]string) *Layout { return spans([4]int64{0, 0, 30, 0}) },
		"a shard inserted before the last": func(st *State, f map[string]string) *Layout {
			return spans([4]int64{0, 0, 30, 0}, [4]int64{2, 30, 5, 2}, [4]int64{1, 35, 20, 3})
		},
		"the last shard shrank": func(st *State, f map[string]string) *Layout {
			return spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 10, 2}, [4]int64{2, 40, 25, 3})
		},
		"another location": func(st *State, f map[string]string) *Layout {
			f["sources.image"] = `{"url":"http://h/other_{0000..0002}.npy"}`
			return three
		},
		"the range's first index": func(st *State, f map[string]string) *Layout {
			f["sources.metadata"] = `{"path":"meta_{0001..0002}.parquet"}`
			return three
		},
		"a second range": func(st *State, f map[string]string) *Layout {
			f["sources.metadata"] = `{"path":"meta_{0000..0002}_{0..1}.parquet"}`
			return three
		},
		"another key too": func(st *State, f map[string]string) *Layout {
			f["points.payload"] = `{"source":"metadata"}`
			return three
		},
		"the batch size": func(st *State, f map[string]string) *Layout {
			f["upload.batch_size"] = `8`
			return three
		},
		"a partition": func(st *State, f map[string]string) *Layout {
			f["partition"] = `0/2`
			return three
		},
		"a lowered limit": func(st *State, f map[string]string) *Layout {
			st.Fields["points.limit"] = `80`
			f["points.limit"] = `60`
			return three
		},
		"a limit where there was none": func(st *State, f map[string]string) *Layout {
			f["points.limit"] = `60`
			return three
		},
		"a hand-edited checkpoint": func(st *State, f map[string]string) *Layout {
			st.Fields["name"] = `"q"`
			return three
		},
	}
	for name, change := range refused {
		st, f := growState()
		nf := grown(f)
		l := change(&st, nf)
		if name != "a hand-edited checkpoint" {
			st.ConfigHash = HashFields(st.Fields)
		}
		if g := Grown(st, nf, l); g != nil {
			t.Errorf("%s: taken as growth: %+v", name, g)
		}
	}
}
