package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
	"github.com/spf13/cobra"
)

type planOptions struct {
	load             loadFlags
	stateDir         string
	detailedExitcode bool
	part             partFlags
}

func newPlanCommand(g *globalOptions) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan PATH",
		Short: "Check sources, server and checkpoint read-only, and show what apply would do",
		Long: `plan changes nothing. It HEADs url sources (size, ETag / X-Linked-Etag) or stats
path sources, reads .npy headers and Parquet footers (by HTTP Range for remote
files) to check vector widths and column names, asks the server whether the
collection exists and how it differs, reads the checkpoint, and prints the
steps apply would take, sorted and deterministic.

With --detailed-exitcode: 0 nothing to do, 2 changes pending, 1 error.`,
		Example: `  snappipe plan configs/sample.yaml
  snappipe plan pipeline.yaml --detailed-exitcode || [ $? -eq 2 ]`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), g, o, args[0])
		},
	}
	o.load.register(cmd)
	stateDirFlag(cmd, &o.stateDir)
	o.part.register(cmd)
	cmd.Flags().BoolVar(&o.detailedExitcode, "detailed-exitcode", false, "exit 2 when apply has work to do, 0 when not, 1 on error")
	return cmd
}

func runPlan(ctx context.Context, g *globalOptions, o *planOptions, path string) error {
	lo, err := o.load.options()
	if err != nil {
		return err
	}
	cfg, err := config.LoadPath(path, lo)
	if err != nil {
		return err
	}
	printWarnings(g, cfg)
	popts := pipeline.ApplyOptions{StateDir: o.stateDir}
	if err := o.part.apply(&popts); err != nil {
		return err
	}
	rep, err := pipeline.PlanRunWith(ctx, cfg, all.Registry(), popts)
	if err != nil {
		return err
	}
	if g.output == "json" {
		ev := newEvents(&globalOptions{output: "json", stdout: g.stdout, stderr: g.stderr, progress: "never"}, nil)
		b, _ := json.Marshal(rep)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["type"] = "plan"
		m["changes_pending"] = rep.Pending()
		ev.emit(m)
		ev.Close()
	} else {
		fmt.Fprint(g.stdout, rep.Text())
	}
	if len(rep.Problems) > 0 {
		return &exitCodeError{code: exitError, err: fmt.Errorf("plan found %d problem(s)", len(rep.Problems))}
	}
	if o.detailedExitcode && rep.Pending() {
		return &exitCodeError{code: exitChanges}
	}
	return nil
}
