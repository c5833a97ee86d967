package pipeline

import (
	"strings"
	"testing"

	"github.com/snappipe/snappipe/pipeline/config"
)

func TestTopologicalOrder(t *testing.T) {
	g := NewGraph()
	g.Connect("download.b", "decode.b")
	g.Connect("decode.a", "batch")
	g.Connect("decode.b", "batch")
	g.Connect("batch", "upsert")
	order, err := g.TopologicalOrder()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "decode.a download.b decode.b batch upsert" {
		t.Fatalf("order %s", got)
	}
	g.Connect("upsert", "decode.a")
	if _, err := g.TopologicalOrder(); err == nil || !strings.Contains(err.Error(), "dependency cycle: batch -> upsert -> decode.a -> batch") {
		t.Fatalf("cycle: %v", err)
	}
}

func TestCompilePlan(t *testing.T) {
	cfg := &config.Config{
		Name: "t",
		Sources: map[string]*config.Source{
			"image": {Path: "img.npy", Format: "npy"},
			"meta":  {URL: "https://example.com/m.parquet", Format: "parquet"},
			"spare": {Path: "spare.npy", Format: "npy"}, // used by no point: no node
		},
		Points: config.PointsConfig{Vectors: map[string]*config.VectorSource{"image": {Source: "image"}}, Payload: &config.PayloadConfig{Source: "meta"}},
	}
	p, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := `decode.image
download.meta
decode.meta <- download.meta
batch <- decode.image, decode.meta
upsert <- batch
snapshot <- upsert
fetch <- snapshot
`
	if p.String() != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", p, want)
	}
}

func TestUpsertStateWatermark(t *testing.T) {
	var u UpsertState
	for _, s := range []int64{2, 0, 5, 1} {
		u.Ack(s)
	}
	if u.Watermark != 3 || len(u.Above) != 1 || u.Above[0] != 5 || !u.Acked(5) || u.Acked(4) || u.AckedCount() != 4 {
		t.Fatalf("%+v", u)
	}
	u.Ack(3)
	u.Ack(4)
	if u.Watermark != 6 || u.Above != nil {
		t.Fatalf("%+v", u)
	}
}
