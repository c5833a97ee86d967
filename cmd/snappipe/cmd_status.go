package main

import (
	"encoding/json"
	"fmt"

	"github.com/snappipe/snappipe/internal/app"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/spf13/cobra"
)

type statusOptions struct {
	load     loadFlags
	stateDir string
	asJSON   bool
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
	return cmd
}

func runStatus(g *globalOptions, o *statusOptions, path string) error {
	lo, err := o.load.options()
	if err != nil {
		return err
	}
	cfg, err := app.LoadConfig(path, lo)
	if err != nil {
		return err
	}
	sp := pipeline.StatePath(app.StateDir(cfg, o.stateDir), cfg.Name)
	sf, existed, err := pipeline.OpenState(sp)
	if err != nil {
		return err
	}
	st := sf.Snapshot()
	if o.asJSON || g.output == "json" {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"state_file": sp, "exists": existed, "config_matches": existed && st.ConfigHash == pipeline.HashFields(pipeline.NormalizedFields(cfg)), "state": st})
	}
	w := g.stdout
	if !existed {
		fmt.Fprintf(w, "No checkpoint for pipeline %s (%s): nothing done yet.\n", cfg.Name, sp)
		return nil
	}
	fmt.Fprintf(w, "Pipeline %s (state %s, updated %s)\n", cfg.Name, sp, st.UpdatedAt.Format("2006-01-02 15:04:05Z"))
	if st.ConfigHash != pipeline.HashFields(pipeline.NormalizedFields(cfg)) {
		fmt.Fprintln(w, "  ! the config changed since this checkpoint; apply will refuse to resume (see plan)")
	}
	for _, name := range pipeline.UsedSources(cfg) {
		src := cfg.Sources[name]
		if !src.IsRemote() {
			fmt.Fprintf(w, "  download %-10s local file, nothing to download\n", name)
			continue
		}
		ds := st.Downloads[name]
		switch {
		case ds == nil:
			fmt.Fprintf(w, "  download %-10s pending\n", name)
		case ds.Done:
			fmt.Fprintf(w, "  download %-10s done (%d bytes, sha256 %s)\n", name, ds.Size, ds.SHA256)
		default:
			fmt.Fprintf(w, "  download %-10s partial (of %d bytes)\n", name, ds.Size)
		}
	}
	fmt.Fprintf(w, "  collection %s\n", doneWord(st.Collection.Ready))
	u := st.Upsert
	switch {
	case u.Done:
		fmt.Fprintf(w, "  upsert     done (%d points)\n", u.Rows)
	case u.Rows < 0:
		fmt.Fprintln(w, "  upsert     pending")
	default:
		batches := (u.Rows + int64(u.BatchSize) - 1) / int64(max(u.BatchSize, 1))
		fmt.Fprintf(w, "  upsert     partial: %d of %d batches acknowledged (watermark %d, %d above it)\n", u.AckedCount(), batches, u.Watermark, len(u.Above))
	}
	switch {
	case st.Snapshot.Name != "":
		fmt.Fprintf(w, "  snapshot   done (%s, %d bytes, sha256 %s)\n", st.Snapshot.Name, st.Snapshot.Size, st.Snapshot.Checksum)
	case st.Snapshot.RequestedAt != nil:
		fmt.Fprintf(w, "  snapshot   requested at %s, name not yet known\n", st.Snapshot.RequestedAt.Format("2006-01-02 15:04:05Z"))
	default:
		fmt.Fprintln(w, "  snapshot   pending")
	}
	if st.Fetch.Done {
		fmt.Fprintf(w, "  fetch      done (%s, sha256 %s)\n", st.Fetch.Path, st.Fetch.SHA256)
	} else {
		fmt.Fprintln(w, "  fetch      pending")
	}
	return nil
}

func doneWord(b bool) string {
	if b {
		return "done"
	}
	return "pending"
}
