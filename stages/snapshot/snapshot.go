// Package snapshot is the stage that creates the collection snapshot once
// every upsert is acknowledged. Creation may outlast any deadline (Qdrant
// finishes it in the background), so a timed-out or interrupted request is
// followed by polling List for the new snapshot, never by a second Create.
package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind is the stage kind.
const Kind = pipeline.KindSnapshot

// Ports are the messages this stage kind consumes and emits.
var Ports = pipeline.Ports{Consumes: []string{pipeline.MsgUpsertDone}, Emits: []string{pipeline.MsgSnapshot}}

// Snapshot creates the snapshot.
type Snapshot struct {
	rt    *pipeline.Runtime
	state pipeline.Section[pipeline.SnapshotState]
	// PollInterval and ResumeGrace tune the wait for a snapshot requested
	// by an earlier, interrupted run.
	PollInterval time.Duration
	ResumeGrace  time.Duration
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	sec, err := pipeline.SnapshotSection(rt, n)
	if err != nil {
		return nil, err
	}
	return &Snapshot{rt: rt, state: sec, PollInterval: 250 * time.Millisecond, ResumeGrace: 60 * time.Second}, nil
}

// Run waits for UpsertDone and emits SnapshotReady.
func (s *Snapshot) Run(ctx context.Context, sio pipeline.StageIO) error {
	in, err := sio.Input()
	if err != nil {
		return err
	}
	_, ok, err := pipeline.Receive[*pipeline.UpsertDone](ctx, sio, in)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("internal: %s ended without saying the upload is done", in)
	}
	name := s.rt.Config.Collection.Name
	st := s.state.Get()
	if st.Name != "" {
		return sio.Emit(ctx, &pipeline.SnapshotReady{Name: st.Name, Size: st.Size, Checksum: st.Checksum})
	}
	// Creation can take minutes on a large collection: a spinner shows it.
	s.rt.Events.Progress(Kind, 0, -1, "wait")
	if st.RequestedAt != nil {
		// An earlier run asked and died before hearing the name.
		d, found, err := s.poll(ctx, st.Before, s.ResumeGrace)
		if err != nil {
			return err
		}
		if found {
			return s.record(ctx, sio, d)
		}
		s.rt.Log.Warn("snapshot requested by an earlier run never appeared; requesting again", "collection", name)
	}
	before, err := s.list(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if err := s.state.Update(func(st *pipeline.SnapshotState) { st.RequestedAt = &now; st.Before = before }); err != nil {
		return err
	}
	s.rt.Log.Info("creating snapshot", "collection", name)
	cctx, cancel := context.WithTimeout(ctx, s.rt.Config.Snapshot.Timeout.D())
	d, err := s.rt.Qdrant.CreateSnapshot(cctx, name)
	cancel()
	if err == nil {
		return s.record(ctx, sio, d)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable, codes.Canceled:
	default:
		return fmt.Errorf("create snapshot of %q: %w", name, err)
	}
	s.rt.Log.Warn("snapshot request timed out; the server keeps creating it: polling the list", "collection", name, "err", err)
	d, found, err := s.poll(ctx, before, s.rt.Config.Snapshot.Timeout.D())
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("snapshot of %q did not appear within %s; run apply again to keep waiting", name, s.rt.Config.Snapshot.Timeout)
	}
	return s.record(ctx, sio, d)
}

func (s *Snapshot) list(ctx context.Context) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, s.rt.Config.Qdrant.Timeout.D())
	defer cancel()
	ds, err := s.rt.Qdrant.ListSnapshots(cctx, s.rt.Config.Collection.Name)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %q: %w", s.rt.Config.Collection.Name, err)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.GetName())
	}
	slices.Sort(names)
	return names, nil
}

// poll waits up to grace for a snapshot of this collection not in before.
func (s *Snapshot) poll(ctx context.Context, before []string, grace time.Duration) (*qdrant.SnapshotDescription, bool, error) {
	name := s.rt.Config.Collection.Name
	deadline := time.Now().Add(grace)
	for {
		cctx, cancel := context.WithTimeout(ctx, s.rt.Config.Qdrant.Timeout.D())
		ds, err := s.rt.Qdrant.ListSnapshots(cctx, name)
		cancel()
		if err != nil && ctx.Err() == nil && status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
			return nil, false, fmt.Errorf("list snapshots of %q: %w", name, err)
		}
		var fresh []*qdrant.SnapshotDescription
		for _, d := range ds {
			if !slices.Contains(before, d.GetName()) && strings.HasPrefix(d.GetName(), name+"-") {
				fresh = append(fresh, d)
			}
		}
		if len(fresh) > 0 {
			slices.SortFunc(fresh, func(a, b *qdrant.SnapshotDescription) int { return strings.Compare(a.GetName(), b.GetName()) })
			return fresh[len(fresh)-1], true, nil
		}
		if time.Now().After(deadline) {
			return nil, false, nil
		}
		select {
		case <-time.After(s.PollInterval):
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

func (s *Snapshot) record(ctx context.Context, sio pipeline.StageIO, d *qdrant.SnapshotDescription) error {
	s.rt.Events.Progress(Kind, 1, 1, "wait")
	if err := s.state.Update(func(st *pipeline.SnapshotState) {
		st.Name, st.Size, st.Checksum = d.GetName(), d.GetSize(), d.GetChecksum()
	}); err != nil {
		return err
	}
	s.rt.Log.Info("snapshot created", "snapshot", d.GetName(), "size", d.GetSize())
	return sio.Emit(ctx, &pipeline.SnapshotReady{Name: d.GetName(), Size: d.GetSize(), Checksum: d.GetChecksum()})
}

var _ pipeline.Stage = (*Snapshot)(nil)
