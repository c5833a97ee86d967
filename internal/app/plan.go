package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
)

// Plan checks sources, the server and the checkpoint without changing
// anything, and lists what apply would do: a walk of the compiled DAG in
// which every stage adds what it would do (pipeline.WalkPlan).
func Plan(ctx context.Context, cfg *config.Config, stateDir string) (*pipeline.PlanReport, error) {
	stateDir = StateDir(cfg, stateDir)
	p, err := pipeline.Compile(cfg)
	if err != nil {
		return nil, err
	}
	sf, existed, err := pipeline.OpenState(pipeline.StatePath(stateDir, cfg.Name))
	if err != nil {
		return nil, err
	}
	st := sf.Snapshot()
	fields := pipeline.NormalizedFields(cfg)
	fresh := !existed
	var changed string
	if existed && st.ConfigHash != pipeline.HashFields(fields) {
		changed = fmt.Sprintf("the checkpoint %s belongs to a different config (changed: %s): apply refuses to resume; use --full-refresh to start over",
			sf.Path, strings.Join(pipeline.ChangedKeys(st.Fields, fields), ", "))
		fresh = true
		sf = pipeline.EmptyState()
	}
	client, ep, err := connectConfig(cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	rt := &pipeline.Runtime{Config: cfg, Log: slog.New(slog.DiscardHandler), HTTP: HTTPClient(), Qdrant: client,
		RESTBase: ep.RESTBase, CacheDir: filepath.Join(stateDir, "cache", cfg.Name)}
	rt.SetCheckpoint(sf)
	rep, err := pipeline.WalkPlan(ctx, p, all.Registry(), rt, fresh)
	if err != nil {
		return nil, err
	}
	if changed != "" {
		rep.Problems = append([]string{changed}, rep.Problems...)
	}
	return rep, nil
}

// Status describes what the checkpoint holds, stage by stage (a walk of
// the compiled DAG).
func Status(cfg *config.Config, sf *pipeline.StateFile) ([]string, error) {
	p, err := pipeline.Compile(cfg)
	if err != nil {
		return nil, err
	}
	rt := &pipeline.Runtime{Config: cfg, Log: slog.New(slog.DiscardHandler)}
	rt.SetCheckpoint(sf)
	return pipeline.WalkStatus(p, all.Registry(), rt)
}
