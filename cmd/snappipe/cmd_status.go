package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
	"github.com/spf13/cobra"
)

type statusOptions struct {
	load     loadFlags
	stateDir string
	asJSON   bool
	part     partFlags
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status PATH",
		Short: "Show what the checkpoint holds, stage by stage",
		Example: `  snappipe status configs/sample.yaml
  snappipe status pipeline.yaml --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runStatus(g, o, args[0]) },
	}
	o.load.register(cmd)
	stateDirFlag(cmd, &o.stateDir)
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the state as JSON")
	o.part.register(cmd)
	return cmd
}

func runStatus(g *globalOptions, o *statusOptions, path string) error {
	lo, err := o.load.options()
	if err != nil {
		return err
	}
	// status reads no server: the qdrant: keys (an API key kept out of
	// reach) may stay unset. Any other key decides what the checkpoint
	// belongs to, so an unset one is the error it is elsewhere.
	lo.AllowUnset = true
	cfg, err := config.LoadPath(path, lo)
	if err != nil {
		return err
	}
	for _, k := range cfg.Unset {
		if !strings.HasPrefix(k, "qdrant.") {
			lo.AllowUnset = false
			_, err := config.LoadPath(path, lo)
			return err
		}
	}
	var popts pipeline.ApplyOptions
	if err := o.part.apply(&popts); err != nil {
		return err
	}
	sp := pipeline.StatePath(pipeline.StateDir(cfg, o.stateDir), pipeline.RunName(cfg, popts))
	sf, existed, err := pipeline.OpenState(sp)
	if err != nil {
		return err
	}
	st := sf.Snapshot()
	if o.asJSON || g.output == "json" {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"state_file": sp, "exists": existed, "config_matches": existed && pipeline.ConfigMatches(cfg, st),
			"config_grows": existed && pipeline.MayGrow(cfg, st), "state": st})
	}
	w := g.stdout
	if !existed {
		fmt.Fprintf(w, "No checkpoint for pipeline %s (%s): nothing done yet.\n", cfg.Name, sp)
		return nil
	}
	fmt.Fprintf(w, "Pipeline %s (state %s, updated %s)\n", cfg.Name, sp, st.UpdatedAt.Format("2006-01-02 15:04:05Z"))
	switch {
	case pipeline.MayGrow(cfg, st):
		fmt.Fprintln(w, "  ! the config changed since this checkpoint only in ways apply takes over (more shards, a higher limit, another batch size, other payload indexes or HNSW and optimizer settings): it keeps the rows loaded and loads the rest, if the shards it loaded are unchanged (see plan)")
	case !pipeline.ConfigMatches(cfg, st):
		fmt.Fprintln(w, "  ! the config changed since this checkpoint; apply will refuse to resume (see plan)")
	}
	lines, err := pipeline.Status(cfg, all.Registry(), sf)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return nil
}
