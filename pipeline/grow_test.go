package pipeline

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
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
	// Batches 0-2 (shard 0's two, shard 1's first) stay: 46 rows.
	st, f := growState()
	g := Grown(st, grown(f), three)
	if g == nil || g.Upsert.Watermark != 3 || len(g.Upsert.Above) != 0 || g.Kept != 46 || !g.Grew || g.From != "2 shards, 50 rows" || g.To != "3 shards, 75 rows" {
		t.Fatalf("appended shard: %+v", g)
	}
	nf := grown(f)
	g.Apply(&st, HashFields(nf), nf)
	if st.ConfigHash != HashFields(nf) || st.Upsert.Watermark != 3 || st.Upsert.Done || st.Snapshot.Name != "" || st.Snapshot.RequestedAt != nil ||
		st.Fetch.Done || st.Restores != nil || st.Upsert.Rows != 50 || st.Upsert.BatchSize != 16 {
		t.Fatalf("applied: %+v", st)
	}

	// A glob's new files change only the layout.
	st, f = growState()
	glob := maps.Clone(f)
	glob["layout"] = "3 shards"
	if g := Grown(st, glob, three); g == nil || g.Upsert.Watermark != 3 {
		t.Fatalf("glob grown: %+v", g)
	}

	// The old last shard cut by a limit grows: its cut batch is sent again.
	st, f = growState()
	st.Fields["points.limit"] = `45`
	st.Layout.Spans[1] = [4]int64{1, 30, 15, 2}
	st.ConfigHash = HashFields(st.Fields)
	g = Grown(st, f, spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 20, 2}))
	if g == nil || g.Upsert.Watermark != 2 || len(g.Upsert.Above) != 0 || g.Kept != 30 || !g.Grew || g.From != "2 shards, 50 rows" {
		t.Fatalf("raised limit: %+v", g)
	}

	// One file: the batches the old limit filled stay.
	st, f = growState()
	st.Layout = nil
	st.Fields["points.limit"] = `40`
	st.Upsert = UpsertState{BatchSize: 16, Rows: 40, Watermark: 2, Above: []int64{4}}
	st.ConfigHash = HashFields(st.Fields)
	up := maps.Clone(f)
	up["points.limit"] = `100`
	if g := Grown(st, up, SingleLayout(16)); g == nil || g.Upsert.Watermark != 2 || len(g.Upsert.Above) != 0 || g.Kept != 32 || g.From != "points.limit 40" || g.To != "points.limit 100" {
		t.Fatalf("one file: %+v", g)
	}

	// Another batch size: the acknowledged rows are counted on the new
	// batches. Shard 0's 30 rows were batches 0 (0-15) and 1 (16-29),
	// shard 1's 20 rows batch 2 (30-45, acknowledged) and 3 (46-49, not);
	// in batches of 8, shard 0 is 0-3 (all in), shard 1 is 4-6, of which
	// 4 (rows 0-7) and 5 (8-15) lie inside batch 2, 6 (16-19) does not.
	st, f = growState()
	small := maps.Clone(f)
	small["upload.batch_size"], small["layout"] = `8`, "2 shards, batches of 8"
	l8 := spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 20, 4})
	l8.BatchSize = 8
	g = Grown(st, small, l8)
	if g == nil || g.Grew || g.Upsert.BatchSize != 8 || g.Upsert.Watermark != 6 || len(g.Upsert.Above) != 0 || g.Kept != 46 ||
		g.Text("s") != "the checkpoint s is this pipeline's with another batch size (batches of 16, now batches of 8): the 46 rows it loaded stay, the rest is loaded" {
		t.Fatalf("smaller batches: %+v %q", g, g.Text("s"))
	}
	g.Apply(&st, HashFields(small), small)
	if st.Snapshot.Name != "old.snapshot" || !st.Fetch.Done {
		t.Fatalf("no row was added, yet the snapshot was dropped: %+v", st)
	}
	// Larger batches: only those made wholly of acknowledged rows stay.
	st, f = growState()
	st.Upsert.Watermark, st.Upsert.Above = 1, []int64{2} // rows 0-15 and 30-45
	big := maps.Clone(f)
	big["upload.batch_size"], big["layout"] = `32`, "2 shards, batches of 32"
	l32 := spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 20, 1})
	l32.BatchSize = 32
	if g := Grown(st, big, l32); g == nil || g.Upsert.AckedCount() != 0 || g.Kept != 0 ||
		!strings.Contains(g.Text("s"), "every row is loaded again") {
		t.Fatalf("larger batches: %+v", g)
	}

	// Other payload indexes: every row stays, the ones dropped are named,
	// the collection is marked for the change and the snapshot dropped.
	st, f = growState()
	st.Fields["collection.payload_indexes"] = `{"NSFW":"keyword","similarity":"float"}`
	st.ConfigHash = HashFields(st.Fields)
	st.Collection.Ready = true
	ix := maps.Clone(st.Fields)
	ix["collection.payload_indexes"] = `{"NSFW":"text"}`
	g = Grown(st, ix, spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 20, 2}))
	if g == nil || g.Grew || !g.Indexes || strings.Join(g.Drop, ",") != "similarity" || g.Upsert.Watermark != 3 ||
		!strings.Contains(g.Text("s"), "with other payload indexes") {
		t.Fatalf("payload indexes: %+v", g)
	}
	g.Apply(&st, HashFields(ix), ix)
	if !st.Collection.Indexes || strings.Join(st.Collection.Drop, ",") != "similarity" || st.Snapshot.Name != "" || st.Fetch.Done {
		t.Fatalf("payload indexes applied: %+v", st)
	}

	// Other HNSW settings: the collection is updated in place (also while
	// upload.bulk holds m at 0: the upsert stage records the new m as the
	// one to restore).
	st, f = growState()
	st.Fields["collection.hnsw"] = `{"m":16}`
	st.ConfigHash = HashFields(st.Fields)
	st.Collection.Ready = true
	hn := maps.Clone(st.Fields)
	hn["collection.hnsw"] = `{"m":32}`
	two := spans([4]int64{0, 0, 30, 0}, [4]int64{1, 30, 20, 2})
	if g := Grown(st, hn, two); g == nil || !g.Update || g.Grew || !strings.Contains(g.Text("s"), "with other collection settings (HNSW, optimizers, quantization, on_disk, strict mode, metadata)") {
		t.Fatalf("hnsw: %+v", g)
	} else if g.Apply(&st, HashFields(hn), hn); !st.Collection.Update || st.Snapshot.Name != "" {
		t.Fatalf("hnsw applied: %+v", st.Collection)
	}
	// Quantization added to a loaded collection: the same.
	st, _ = growState()
	st.Collection.Ready = true
	qu := maps.Clone(st.Fields)
	qu["collection.quantization"] = `{"scalar":{"type":"int8"}}`
	if g := Grown(st, qu, two); g == nil || !g.Update || g.Grew || g.Indexes {
		t.Fatalf("quantization: %+v", g)
	}
	// A vector's on_disk or quantization: the same; its size, distance or
	// datatype cannot change in place.
	for cur, ok := range map[string]bool{
		`{"Size":8,"Distance":"Cosine","Datatype":"","OnDisk":true}`:                                        true,
		`{"Size":8,"Distance":"Cosine","Datatype":"","OnDisk":null,"Quantization":{"binary":{}}}`:           true,
		`{"Size":16,"Distance":"Cosine","Datatype":"","OnDisk":null}`:                                       false,
		`{"Size":8,"Distance":"Dot","Datatype":"","OnDisk":true}`:                                           false,
		`{"Size":8,"Distance":"Cosine","Datatype":"float16","OnDisk":null}`:                                 false,
		`{"Size":8,"Distance":"Cosine","Datatype":"","OnDisk":null,"Multivector":{"Comparator":"max_sim"}}`: false,
	} {
		st, _ = growState()
		st.Fields["collection.vectors.image"] = `{"Size":8,"Distance":"Cosine","Datatype":"","OnDisk":null}`
		st.ConfigHash = HashFields(st.Fields)
		st.Collection.Ready = true
		vf := maps.Clone(st.Fields)
		vf["collection.vectors.image"] = cur
		if g := Grown(st, vf, two); (g != nil && g.Update) != ok {
			t.Fatalf("vector settings %s: %+v, want taken over %v", cur, g, ok)
		}
	}
	st, _ = growState()
	st.Fields["collection.hnsw"] = `{"m":16}`
	st.ConfigHash = HashFields(st.Fields)
	st.Collection = CollectionState{Ready: true, BulkApplied: true}
	if g := Grown(st, hn, two); g == nil || !g.Update || g.Kept == 0 {
		t.Fatalf("hnsw during a bulk load: %+v", g)
	}

	// A finalize checkpoint (no batches of its own) grows too: it takes a
	// new snapshot.
	st, f = growState()
	st.Upsert = UpsertState{Rows: -1}
	if g := Grown(st, grown(f), three); g == nil || g.Upsert.AckedCount() != 0 || !g.Grew {
		t.Fatalf("finalize: %+v", g)
	}

	// A last span's rows edited to a negative count: not taken over.
	st, f = growState()
	st.Layout.Spans[1][2] = -100
	if g := Grown(st, grown(f), three); g != nil {
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

// Whatever was acknowledged and whatever the new batch size, a batch Grown
// keeps holds only rows the old batches acknowledged, and every batch
// wholly made of such rows is kept.
func TestGrownKeepsExactlyTheAcknowledgedRows(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		obs, nbs := int64(1+r.IntN(20)), int64(1+r.IntN(20))
		var old, cur [][4]int64
		var start, oseq, nseq int64
		for k := range 1 + r.IntN(4) {
			n := int64(r.IntN(50))
			old = append(old, [4]int64{int64(k), start, n, oseq})
			cur = append(cur, [4]int64{int64(k), start, n, nseq})
			start, oseq, nseq = start+n, oseq+(n+obs-1)/obs, nseq+(n+nbs-1)/nbs
		}
		var up UpsertState
		acked := map[[2]int64]bool{} // (shard, row)
		for i, o := range old {
			for b := int64(0); b*obs < o[2]; b++ {
				if r.IntN(3) > 0 {
					up.Ack(o[3] + b)
					for row := b * obs; row < min((b+1)*obs, o[2]); row++ {
						acked[[2]int64{int64(i), row}] = true
					}
				}
			}
		}
		f := map[string]string{"upload.batch_size": fmt.Sprint(obs), "layout": "old"}
		nf := map[string]string{"upload.batch_size": fmt.Sprint(nbs), "layout": "new"}
		st := State{Fields: f, ConfigHash: HashFields(f), Upsert: UpsertState{BatchSize: int(obs), Rows: start, Watermark: up.Watermark, Above: up.Above},
			Layout: &LayoutRecord{Rows: start, Spans: old}}
		l := spans(cur...)
		l.BatchSize = int(nbs)
		g := Grown(st, nf, l)
		if g == nil {
			t.Fatal("not taken over")
		}
		for i, c := range cur {
			for b := int64(0); b*nbs < c[2]; b++ {
				whole := true
				for row := b * nbs; row < min((b+1)*nbs, c[2]); row++ {
					whole = whole && acked[[2]int64{int64(i), row}]
				}
				if g.Upsert.Acked(c[3]+b) != whole {
					t.Fatalf("obs %d nbs %d shard %d batch %d: kept %v, its rows all acknowledged %v", obs, nbs, i, b, g.Upsert.Acked(c[3]+b), whole)
				}
			}
		}
	}
}
