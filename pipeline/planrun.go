package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/qdrantconn"
	"github.com/snappipe/snappipe/pipeline/config"
)

// PlanRun checks sources, the server and the checkpoint without changing
// anything, and lists what apply would do: a walk of the compiled DAG in
// which every stage adds what it would do (WalkPlan).
func PlanRun(ctx context.Context, cfg *config.Config, reg *Registry, stateDir string) (*PlanReport, error) {
	return PlanRunWith(ctx, cfg, reg, ApplyOptions{StateDir: stateDir})
}

// PlanRunWith is PlanRun for a partition or finalize run (opts.Partition,
// opts.Finalize).
func PlanRunWith(ctx context.Context, cfg *config.Config, reg *Registry, opts ApplyOptions) (*PlanReport, error) {
	if err := checkMode(cfg, opts); err != nil {
		return nil, err
	}
	stateDir := StateDir(cfg, opts.StateDir)
	runName := RunName(cfg, opts)
	p, err := Compile(cfg, opts.Mode())
	if err != nil {
		return nil, err
	}
	sf, existed, err := OpenState(StatePath(stateDir, runName))
	if err != nil {
		return nil, err
	}
	st := sf.Snapshot()
	// The layout reads every shard's header (the row counts a resumed run
	// cached are used); a missing shard or row counts that differ are
	// problems, and then nothing else can be planned.
	layout, lerr := BuildLayout(ctx, cfg, LayoutOptions{HTTP: HTTPClient(), Header: httpget.HFAuth(), Partition: opts.Partition, Cache: readOnly(sf)})
	if lerr != nil {
		return &PlanReport{Pipeline: cfg.Name, Sources: []SourceReport{}, Actions: []string{}, Problems: []string{lerr.Error()}}, nil
	}
	if why := layout.EmptyPartition(); why != "" {
		return &PlanReport{Pipeline: cfg.Name, Sources: []SourceReport{}, Actions: []string{}, Shards: []string{"  " + why}, UpToDate: "this partition has nothing to load"}, nil
	}
	fields := NormalizedFields(cfg)
	layout.Fields(fields)
	fresh := !existed
	var changed, grown string
	var g *Growth
	if existed && st.ConfigHash != HashFields(fields) {
		g = Grown(st, fields, layout)
	}
	if g != nil {
		// apply would take the checkpoint over: plan from what it keeps.
		grown = g.Text(sf.Path)
		g.Apply(&st, HashFields(fields), fields)
		sf = &StateFile{s: st}
	} else if existed && st.ConfigHash != HashFields(fields) {
		keys := ChangedKeys(st.Fields, fields)
		what := "changed: " + strings.Join(keys, ", ")
		if len(keys) == 0 || HashFields(st.Fields) != st.ConfigHash {
			what = "its config_hash does not match its config_fields: edited by hand?"
		}
		changed = fmt.Sprintf("the checkpoint %s belongs to a different config (%s): apply refuses to resume; use --full-refresh to start over",
			sf.Path, what)
		fresh = true
		sf = EmptyState()
	}
	if changed == "" {
		// As apply would: the uploads the other snapshot.scope left go
		// to this one's snapshot stage, whose plan lists them.
		if s := sf.Snapshot(); s.HandOverUploads(p.Has(KindFetch), p.Has(KindClusterSnapshot)) {
			sf = &StateFile{s: s}
		}
	}
	client, ep, err := qdrantconn.Connect(cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	rt := &Runtime{Config: cfg, Log: slog.New(slog.DiscardHandler), HTTP: HTTPClient(), Qdrant: client,
		RESTBase: ep.RESTBase, CacheDir: filepath.Join(stateDir, "cache", runName), Layout: layout, Partitions: opts.Partitions}
	rt.SetCheckpoint(sf)
	rep, err := WalkPlan(ctx, p, reg, rt, fresh)
	if err != nil {
		return nil, err
	}
	if layout.Sharded {
		if opts.Mode() == ModeFinalize {
			// Finalize loads nothing: the partitions' progress is in their
			// own checkpoints, not in this one.
			rep.Shards = []string{fmt.Sprintf("  shards     %d in the set, %d rows, loaded by the partitions (status --partition I/N shows each one's progress)", layout.AllShards, layout.Rows)}
		} else {
			rep.Shards = ShardTable(layout, sf.Snapshot().Upsert, rt.Resume)
			// Only shards with batches still to acknowledge are loaded: a
			// finished set plans nothing (plan --detailed-exitcode: 0).
			left := 0
			for _, sp := range layout.Shards {
				if !layout.SpanDone(rt.Resume, sp) {
					left++
				}
			}
			if left > 0 {
				a := fmt.Sprintf("load %d of %d shards (%d rows) in index order, %d files at a time per source",
					len(layout.Shards), layout.AllShards, layout.Rows, cfg.Download.ParallelShards)
				if left < len(layout.Shards) {
					a += fmt.Sprintf(" (%d of them unfinished)", left)
				}
				rep.Actions = append([]string{a}, rep.Actions...)
			}
		}
	}
	if opts.Partition != nil {
		rep.UpToDate = fmt.Sprintf("partition %s has loaded its shards (partitions take no snapshot: finalize does)", opts.Partition)
	}
	rep.Checkpoint = grown
	if changed != "" {
		rep.Problems = append([]string{changed}, rep.Problems...)
	} else if st.LastFailure != nil {
		rep.LastFailure = st.LastFailure.Text(cfg.Collection.Name)
	}
	return rep, nil
}

// readOnly gives BuildLayout the state's cached row counts without
// letting it write (plan changes nothing).
func readOnly(sf *StateFile) *StateFile {
	st := sf.Snapshot()
	return &StateFile{s: st}
}

// ShardTable is a compact per-shard view for plan and status: counts by
// state, then the unfinished shards (at most 20 named) and totals.
func ShardTable(l *Layout, up UpsertState, r Resume) []string {
	var done, partial, pending, empty int
	var unfinished []string
	var loaded int64
	bs := int64(l.BatchSize)
	for _, s := range l.Shards {
		nb := s.Batches(l.BatchSize)
		var acked, rows int64
		for j := int64(0); j < nb; j++ {
			if r.Acked(l.BatchSize, s.FirstSeq+j) {
				acked++
				rows += min(bs, s.Rows-j*bs)
			}
		}
		loaded += rows
		switch {
		case nb == 0:
			empty++
			continue
		case acked == nb:
			done++
			continue
		case acked > 0:
			partial++
		default:
			pending++
		}
		if len(unfinished) < 20 {
			unfinished = append(unfinished, fmt.Sprintf("    shard %-6d rows %d-%d: %d of %d rows loaded", s.Index, s.Start, s.Start+s.Rows-1, rows, s.Rows))
		}
	}
	out := []string{fmt.Sprintf("  shards     %d of %d in this run: %d done, %d partial, %d pending, %d empty; %d of %d rows loaded", len(l.Shards), l.AllShards, done, partial, pending, empty, loaded, l.Rows)}
	if l.Partition != nil {
		out[0] += fmt.Sprintf(" (partition %s)", l.Partition)
	}
	out = append(out, unfinished...)
	if n := partial + pending - len(unfinished); n > 0 {
		out = append(out, fmt.Sprintf("    ... and %d more unfinished", n))
	}
	return out
}

// Status describes what the checkpoint holds, stage by stage (a walk of
// the compiled DAG).
func Status(cfg *config.Config, reg *Registry, sf *StateFile) ([]string, error) {
	st := sf.Snapshot()
	mode := ModeFull
	if st.Fields["partition"] != "" {
		mode = ModePartition
	}
	p, err := Compile(cfg, mode)
	if err != nil {
		return nil, err
	}
	runName := strings.TrimSuffix(filepath.Base(sf.Path), ".state.json")
	rt := &Runtime{Config: cfg, Log: slog.New(slog.DiscardHandler), Layout: st.Layout.Layout(cfg.Upload.BatchSize),
		CacheDir: filepath.Join(filepath.Dir(sf.Path), "cache", runName)}
	rt.SetCheckpoint(sf)
	lines, err := WalkStatus(p, reg, rt)
	if err == nil && rt.Layout != nil && rt.Layout.Sharded {
		lines = append(lines, ShardTable(rt.Layout, st.Upsert, rt.Resume)...)
	}
	if f := sf.Snapshot().LastFailure; f != nil && err == nil {
		lines = append(lines, "", f.Text(cfg.Collection.Name))
	}
	return lines, err
}
