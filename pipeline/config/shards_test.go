package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRangeExpansion(t *testing.T) {
	s := &Source{URL: "https://h/d/metadata_{0000..0003}.parquet?x=1"}
	if !s.IsShardSet() || !s.HasRange() {
		t.Fatal("a range is a shard set")
	}
	fs, err := s.Shards("/base")
	if err != nil || len(fs) != 4 || fs[0].URL != "https://h/d/metadata_0000.parquet?x=1" || fs[3].Index != 3 || fs[3].URL != "https://h/d/metadata_0003.parquet?x=1" {
		t.Fatalf("%v %v", fs, err)
	}
	fs, _ = (&Source{Path: "e/emb_{0..10}.npy"}).Shards("/base")
	if len(fs) != 11 || fs[10].Path != "/base/e/emb_10.npy" || fs[2].Path != "/base/e/emb_2.npy" {
		t.Fatalf("%v", fs)
	}
	for _, bad := range []string{"a_{3..1}.npy", "a_{0..1}_{0..1}.npy", "a_{0..999999}.npy"} {
		if _, err := (&Source{Path: bad}).Shards("/"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestGlobShardIndexes(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"text_emb_0010.npy", "text_emb_0002.npy", "text_emb_0000.npy", "other.txt"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	fs, err := (&Source{Path: "text_emb_*.npy"}).Shards(dir)
	if err != nil || len(fs) != 3 || fs[0].Index != 0 || fs[1].Index != 2 || fs[2].Index != 10 || filepath.Base(fs[2].Path) != "text_emb_0010.npy" {
		t.Fatalf("%v %v", fs, err)
	}
	// Hugging Face names: the varying part is the first integer.
	hf := t.TempDir()
	for _, n := range []string{"train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet"} {
		os.WriteFile(filepath.Join(hf, n), nil, 0o644)
	}
	fs, err = (&Source{Path: "train-*.parquet"}).Shards(hf)
	if err != nil || len(fs) != 3 || fs[2].Index != 2 {
		t.Fatalf("hf: %v %v", fs, err)
	}
	if _, err := (&Source{Path: "nothing_*.npy"}).Shards(dir); err == nil || !strings.Contains(err.Error(), "matches no file") {
		t.Fatalf("empty glob: %v", err)
	}
}

func TestPairShardsNamesEveryMissing(t *testing.T) {
	mk := func(idx ...int) []ShardFile {
		var out []ShardFile
		for _, i := range idx {
			out = append(out, ShardFile{Index: i})
		}
		return out
	}
	sets := map[string][]ShardFile{"meta": mk(0, 1, 2, 3), "img": mk(0, 2, 3), "txt": mk(0, 1, 3)}
	sharded := map[string]bool{"meta": true, "img": true, "txt": true}
	_, err := PairShards(sets, sharded)
	if err == nil || !strings.Contains(err.Error(), "missing: img shard 1, txt shard 2") {
		t.Fatalf("%v", err)
	}
	sets["img"], sets["txt"] = mk(0, 1, 2, 3), mk(0, 1, 2, 3)
	if idx, err := PairShards(sets, sharded); err != nil || len(idx) != 4 {
		t.Fatalf("%v %v", idx, err)
	}
	sharded["txt"] = false
	if _, err := PairShards(sets, sharded); err == nil || !strings.Contains(err.Error(), "txt are single files") {
		t.Fatalf("mix: %v", err)
	}
}

// validate pairs ranges offline and names the missing shards at the key.
func TestValidatePairsRanges(t *testing.T) {
	y := `version: 1
name: s
collection: { name: C, vectors: { v: { size: 8, distance: Dot } } }
sources:
  meta: { url: "https://h/metadata_{0000..0004}.parquet" }
  img:  { url: "https://h/img_emb_{0000..0003}.npy" }
points:
  vectors: { v: img }
  payload: { source: meta }
snapshot: { destination: out }
`
	_, ds := load(t, y, nil)
	if len(ds) != 1 || !strings.Contains(ds[0].Message, "missing: img shard 4") || ds[0].Line != 6 {
		t.Fatalf("%v", ds)
	}
	_, ds = load(t, strings.Replace(y, "{0000..0003}", "{0000..0004}", 1), nil)
	if len(ds) != 0 {
		t.Fatalf("%v", ds)
	}
	_, ds = load(t, strings.Replace(y, "img_emb_{0000..0003}.npy", "img_emb.npy", 1), nil)
	if len(ds) != 1 || !strings.Contains(ds[0].Message, "img are single files while meta are shard sets") {
		t.Fatalf("mix: %v", ds)
	}
	// A bad range in every source: each is named, all at once.
	_, ds = load(t, strings.NewReplacer("{0000..0004}", "{0..99999999}", "{0000..0003}", "{5..1}").Replace(y), nil)
	if len(ds) != 2 || !strings.Contains(ds[0].Message, "range {0..99999999} names 100000000 files; at most 100000") || ds[0].Line != 5 ||
		!strings.Contains(ds[1].Message, "range {5..1}: expected {FIRST..LAST} with FIRST <= LAST") || ds[1].Line != 6 {
		t.Fatalf("bad ranges: %v", ds)
	}
	// What looks like a range and is not one is a mistake, not a file name.
	for bad, want := range map[string]string{
		"{0..}":         "{0..} is not a shard range: write {FIRST..LAST} with whole numbers, FIRST <= LAST, e.g. {0000..2313}",
		"{a..c}":        "{a..c} is not a shard range",
		"{-1..3}":       "{-1..3} is not a shard range",
		"{0..1}_{0..1}": "holds 2 {A..B} ranges; a shard set has exactly one",
	} {
		_, ds = load(t, strings.NewReplacer("{0000..0004}", bad, "{0000..0003}", bad).Replace(y), nil)
		if len(ds) != 2 || !strings.Contains(ds[0].Message, want) || !strings.Contains(ds[1].Message, want) {
			t.Errorf("%s: %v", bad, ds)
		}
	}
}

// qdrant.peers takes the shard-set range syntax (Qdrant Cloud's node-{i}-
// host prefix).
func TestPeersRange(t *testing.T) {
	y := strings.Replace(goodConfig, "snapshot:", "snapshot:\n  scope: cluster", 1)
	y = strings.Replace(y, "qdrant:", "qdrant:\n  peers: [\"https://node-{0..2}-abc.cloud.qdrant.io:6333\", \"http://extra:6333\"]", 1)
	cfg, ds := load(t, y, nil)
	if len(ds) != 0 {
		t.Fatalf("%v", ds)
	}
	if len(cfg.Qdrant.Peers) != 4 || cfg.Qdrant.Peers[2] != "https://node-2-abc.cloud.qdrant.io:6333" {
		t.Fatalf("peers %v", cfg.Qdrant.Peers)
	}
}

// Shards named by hash (DataComp: <hash>.parquet beside <hash>.npz) pair
// by the hash: prefixes and suffixes cut at separators, indexes from the
// sorted keys of all sources, a missing file named by its hash, and
// numbered and hashed sets not mixed.
func TestHashNamedShardsPairByKey(t *testing.T) {
	dir := t.TempDir()
	hashes := []string{"d102e77a", "3aed1e96", "3a0f0c11"} // 3aed and 3a0f share a prefix, as hashes do
	for _, h := range hashes {
		os.WriteFile(filepath.Join(dir, h+".parquet"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "emb_"+h+".npz"), nil, 0o644)
	}
	meta, err := (&Source{Path: "*.parquet"}).Shards(dir)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := (&Source{Path: "emb_*.npz"}).Shards(dir)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]ShardFile{"meta": meta, "emb": emb}
	sharded := map[string]bool{"meta": true, "emb": true}
	idx, err := PairShards(sets, sharded)
	if err != nil || len(idx) != 3 {
		t.Fatalf("%v %v", idx, err)
	}
	for _, s := range []string{"meta", "emb"} {
		for _, f := range sets[s] {
			want := map[string]int{"3a0f0c11": 0, "3aed1e96": 1, "d102e77a": 2}[f.Key]
			if f.Index != want || !strings.Contains(filepath.Base(f.Path), f.Key) {
				t.Fatalf("%s: %+v, want index %d", s, f, want)
			}
		}
	}
	os.Remove(filepath.Join(dir, "emb_3aed1e96.npz"))
	emb, _ = (&Source{Path: "emb_*.npz"}).Shards(dir)
	meta, _ = (&Source{Path: "*.parquet"}).Shards(dir)
	if _, err := PairShards(map[string][]ShardFile{"meta": meta, "emb": emb}, sharded); err == nil || !strings.Contains(err.Error(), "missing: emb shard 3aed1e96") {
		t.Fatalf("missing: %v", err)
	}
	nums := []ShardFile{{Index: 0, Path: "a_0.npy"}, {Index: 1, Path: "a_1.npy"}}
	if _, err := PairShards(map[string][]ShardFile{"meta": meta, "img": nums}, map[string]bool{"meta": true, "img": true}); err == nil || !strings.Contains(err.Error(), "named by number") {
		t.Fatalf("mix: %v", err)
	}
}
