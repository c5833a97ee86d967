package pipeline

import (
	"os"
	"path/filepath"
	"testing"
)

// A state file as snappipe wrote it before per-stage sections existed
// (copied from a run of commit 36e548b interrupted during the upload)
// opens, and each stage's section and the resume copy read it as before.
const oldStateFile = `{
  "state_version": 1,
  "pipeline": "oldnew3",
  "config_hash": "bb8a",
  "config_fields": {"name": "\"oldnew3\""},
  "updated_at": "2026-11-27T06:29:20.1Z",
  "downloads": {
    "meta": {"url": "https://h/m.parquet", "final_url": "https://cdn/m.parquet", "size": 1000, "etag": "\"e\"", "sha256": "ab", "bytes_done": 1000, "done": true}
  },
  "collection": {"ready": true, "bulk_saved_hnsw_m": 16, "bulk_applied": true},
  "upsert": {"batch_size": 64, "rows": 2000, "watermark": 22, "acked_above_watermark": [23, 25], "done": false},
  "snapshot": {},
  "fetch": {"done": false}
}
`

func TestOldStateFilesResume(t *testing.T) {
	p := filepath.Join(t.TempDir(), "oldnew3.state.json")
	if err := os.WriteFile(p, []byte(oldStateFile), 0o600); err != nil {
		t.Fatal(err)
	}
	sf, existed, err := OpenState(p)
	if err != nil || !existed {
		t.Fatalf("open: %v %v", existed, err)
	}
	rt := &Runtime{}
	rt.SetCheckpoint(sf)
	if rt.Resume.FirstRow(64) != 22*64 || !rt.Resume.Acked(64, 23) || rt.Resume.Acked(64, 24) || !rt.Resume.Acked(64, 25) || rt.Resume.FirstRow(32) != 0 {
		t.Fatalf("resume %+v", rt.Resume)
	}
	if _, done := rt.Resume.AllLoaded(); done {
		t.Fatal("an unfinished upload reads as loaded")
	}
	ds, err := DownloadSection(rt, &Node{ID: "download.meta", Kind: KindDownload, Source: "meta"})
	if err != nil {
		t.Fatal(err)
	}
	if d := ds.Get(); !d.Done || d.SHA256 != "ab" || d.Size != 1000 || d.FinalURL != "https://cdn/m.parquet" {
		t.Fatalf("download section %+v", d)
	}
	up := &Node{ID: "upsert", Kind: KindUpsert}
	cs, _ := CollectionSection(rt, up)
	us, _ := UpsertSection(rt, up)
	if c := cs.Get(); !c.Ready || c.BulkHNSWM == nil || *c.BulkHNSWM != 16 || !c.BulkApplied {
		t.Fatalf("collection section %+v", c)
	}
	if u := us.Get(); u.AckedCount() != 24 || u.Rows != 2000 {
		t.Fatalf("upsert section %+v", u)
	}
	// A section is only its stage's: asking with another node fails.
	if _, err := FetchSection(rt, up); err == nil {
		t.Fatal("the upsert node got the fetch section")
	}
	// Writing a section keeps the others as they were.
	if err := us.Update(func(u *UpsertState) { u.Ack(22) }); err != nil {
		t.Fatal(err)
	}
	sf2, _, _ := OpenState(p)
	st := sf2.Snapshot()
	if st.Upsert.Watermark != 24 || !st.Downloads["meta"].Done || !st.Collection.Ready {
		t.Fatalf("after an update: %+v", st)
	}
}
