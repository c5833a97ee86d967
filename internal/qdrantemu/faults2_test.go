package qdrantemu_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"google.golang.org/grpc/codes"
)

// wait=false writes are acknowledged before they are applied when
// AsyncApplyDelay is set; wait=true writes are applied before the answer.
func TestAsyncApplyDelay(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{Faults: qdrantemu.Faults{AsyncApplyDelay: time.Hour}})
	ctx := context.Background()
	named768(t, c, "c")
	pt := func(id uint64) []*qdrant.PointStruct {
		return []*qdrant.PointStruct{{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"text": qdrant.NewVectorDense(vec(768, 0))})}}
	}
	r, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(false), Points: pt(1)})
	if err != nil || r.GetStatus() != qdrant.UpdateStatus_Acknowledged {
		t.Fatalf("wait=false: %v %v", r, err)
	}
	count := func() uint64 {
		n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("wait=false point visible at once with a deferred apply: %d", n)
	}
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: pt(2)}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("wait=true point not applied before the answer: %d", n)
	}
	// A short delay: the deferred point appears by itself.
	srv.SetFaults(qdrantemu.Faults{AsyncApplyDelay: time.Millisecond})
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(false), Points: pt(3)}); err != nil {
		t.Fatal(err)
	}
	for count() != 2 {
		time.Sleep(time.Millisecond) // polls an observed change, no deadline
	}
	ups := srv.OpsOf("upsert")
	if len(ups) != 3 || ups[0].Wait || !ups[1].Wait || ups[0].Points != 1 || ups[0].Code != codes.OK {
		t.Fatalf("journal: %+v", ups)
	}
}

// CorruptDownloads serves bytes that disagree with the listed checksum,
// once per scheduled download; the journal records each download.
func TestCorruptDownloads(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	named768(t, c, "c")
	fill(t, c, "c", 10)
	d, err := c.CreateSnapshot(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	get := func() (string, int) {
		resp, err := http.Get(srv.URL() + "/collections/c/snapshots/" + d.GetName())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:]), len(b)
	}
	srv.SetFaults(qdrantemu.Faults{CorruptDownloads: 1})
	bad, n1 := get()
	good, n2 := get()
	if bad == d.GetChecksum() || good != d.GetChecksum() || n1 != n2 || int64(n1) != d.GetSize() {
		t.Fatalf("corrupt %s (%d), then %s (%d); listed %s (%d)", bad, n1, good, n2, d.GetChecksum(), d.GetSize())
	}
	if got := len(srv.OpsOf("download")); got != 2 {
		t.Fatalf("journal has %d downloads", got)
	}
}

// The journal records the HNSW m a collection had at each change.
func TestJournalRecordsConfigHistory(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "h", ShardNumber: qdrant.PtrOf(uint32(3)),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot}),
		HnswConfig:    &qdrant.HnswConfigDiff{M: qdrant.PtrOf(uint64(24))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: "h", HnswConfig: &qdrant.HnswConfigDiff{M: qdrant.PtrOf(uint64(0))}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCollection(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	ops := srv.Ops()
	if len(ops) != 3 || ops[0].Kind != "create" || ops[0].HNSWM != 24 || ops[0].ShardNumber != 3 ||
		ops[1].Kind != "update" || ops[1].HNSWM != 0 || ops[2].Kind != "delete" {
		t.Fatalf("journal: %+v", ops)
	}
}
