package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/snappipe/snappipe/internal/qdrantconn"
	"github.com/snappipe/snappipe/pipeline/config"
)

// PlanRun checks sources, the server and the checkpoint without changing
// anything, and lists what apply would do: a walk of the compiled DAG in
// which every stage adds what it would do (WalkPlan).
func PlanRun(ctx context.Context, cfg *config.Config, reg *Registry, stateDir string) (*PlanReport, error) {
	stateDir = StateDir(cfg, stateDir)
	p, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	sf, existed, err := OpenState(StatePath(stateDir, cfg.Name))
	if err != nil {
		return nil, err
	}
	st := sf.Snapshot()
	fields := NormalizedFields(cfg)
	fresh := !existed
	var changed string
	if existed && st.ConfigHash != HashFields(fields) {
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
	client, ep, err := qdrantconn.Connect(cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	rt := &Runtime{Config: cfg, Log: slog.New(slog.DiscardHandler), HTTP: HTTPClient(), Qdrant: client,
		RESTBase: ep.RESTBase, CacheDir: filepath.Join(stateDir, "cache", cfg.Name)}
	rt.SetCheckpoint(sf)
	rep, err := WalkPlan(ctx, p, reg, rt, fresh)
	if err != nil {
		return nil, err
	}
	if changed != "" {
		rep.Problems = append([]string{changed}, rep.Problems...)
	} else if st.LastFailure != nil {
		rep.LastFailure = st.LastFailure.Text(cfg.Collection.Name)
	}
	return rep, nil
}

// Status describes what the checkpoint holds, stage by stage (a walk of
// the compiled DAG).
func Status(cfg *config.Config, reg *Registry, sf *StateFile) ([]string, error) {
	p, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{Config: cfg, Log: slog.New(slog.DiscardHandler)}
	rt.SetCheckpoint(sf)
	lines, err := WalkStatus(p, reg, rt)
	if f := sf.Snapshot().LastFailure; f != nil && err == nil {
		lines = append(lines, "", f.Text(cfg.Collection.Name))
	}
	return lines, err
}
