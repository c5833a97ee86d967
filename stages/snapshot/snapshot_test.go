package snapshot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/pipeline/stagetest"
	"github.com/snappipe/snappipe/stages/snapshot"
)

func setup(t *testing.T, faults qdrantemu.Faults, timeout string, seed func(*pipeline.State)) (*qdrantemu.Server, *qdrant.Client, *pipeline.Runtime, *pipeline.StateFile) {
	t.Helper()
	srv, c := testkit.Emulator(t, qdrantemu.Options{Faults: faults})
	if err := c.CreateCollection(context.Background(), &qdrant.CreateCollection{CollectionName: "C",
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 3, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("p.yaml", []byte(`version: 1
name: s
qdrant: { timeout: 5s }
collection: { name: C, vectors: { v: { size: 3, distance: Dot } } }
sources: { s: { path: s.npy } }
points: { vectors: { v: s } }
snapshot: { destination: out, timeout: `+timeout+` }
`), t.TempDir(), config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	rt, sf := stagetest.Runtime(t, cfg, seed)
	rt.Qdrant = c
	return srv, c, rt, sf
}

func run(t *testing.T, rt *pipeline.Runtime) (*pipeline.SnapshotReady, error) {
	t.Helper()
	st, err := snapshot.New(&pipeline.Node{ID: "snapshot", Kind: pipeline.KindSnapshot}, rt)
	if err != nil {
		t.Fatal(err)
	}
	st.(*snapshot.Snapshot).PollInterval = 10 * time.Millisecond
	out, err := stagetest.Run(context.Background(), "snapshot", snapshot.Ports, st, map[string][]pipeline.Message{"upsert": {&pipeline.UpsertDone{Points: 0}}})
	if err != nil {
		return nil, err
	}
	if len(out) != 1 {
		t.Fatalf("emitted %v", out)
	}
	return out[0].(*pipeline.SnapshotReady), nil
}

func TestSnapshotCreatesOnceAndRecords(t *testing.T) {
	srv, c, rt, sf := setup(t, qdrantemu.Faults{}, "30s", nil)
	got, err := run(t, rt)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := c.ListSnapshots(context.Background(), "C")
	if len(list) != 1 || list[0].GetName() != got.Name || list[0].GetChecksum() != got.Checksum {
		t.Fatalf("emitted %+v, server lists %v", got, list)
	}
	if st := sf.Snapshot(); st.Snapshot.Name != got.Name || st.Snapshot.RequestedAt == nil {
		t.Fatalf("checkpoint %+v", st.Snapshot)
	}
	// A later run with the name recorded creates nothing.
	rt.SetCheckpoint(sf)
	again, err := run(t, rt)
	if err != nil || again.Name != got.Name || srv.Stats().SnapshotsCreated != 1 {
		t.Fatalf("second run: %+v %v, %d created", again, err, srv.Stats().SnapshotsCreated)
	}
}

// A request that times out is not repeated: the stage polls the list until
// the server's snapshot appears.
func TestSnapshotTimeoutPolls(t *testing.T) {
	srv, _, rt, _ := setup(t, qdrantemu.Faults{SnapshotDelay: 300 * time.Millisecond}, "50ms", nil)
	rt.Config.Snapshot.Timeout = config.Duration(50 * time.Millisecond)
	_, err := run(t, rt)
	// The poll window is the same timeout: too short here, so the stage
	// says to run again, and no second snapshot was requested.
	if err == nil || !strings.Contains(err.Error(), "did not appear within") {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.OpsOf("snapshot")); n != 1 {
		t.Fatalf("%d snapshot requests, want 1", n)
	}
}

// A run that died after asking finds the snapshot the server made for it.
func TestSnapshotResumesARequest(t *testing.T) {
	srv, c, rt, sf := setup(t, qdrantemu.Faults{}, "30s", nil)
	d, err := c.CreateSnapshot(context.Background(), "C") // the earlier run's request
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sf.Update(func(s *pipeline.State) { s.Snapshot.RequestedAt = &now; s.Snapshot.Before = nil })
	rt.SetCheckpoint(sf)
	got, err := run(t, rt)
	if err != nil || got.Name != d.GetName() {
		t.Fatalf("got %+v %v, want %s", got, err, d.GetName())
	}
	if n := len(srv.OpsOf("snapshot")); n != 1 {
		t.Fatalf("%d snapshot requests, want 1 (no second)", n)
	}
}
