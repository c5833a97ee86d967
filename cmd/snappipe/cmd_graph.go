package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

func newGraphCommand(g *globalOptions) *cobra.Command {
	var load loadFlags
	var format string
	var part partFlags
	cmd := &cobra.Command{
		Use:   "graph CONFIG",
		Short: "Print the compiled DAG of stages as Graphviz DOT or a Mermaid flowchart",
		Long: `graph compiles the pipeline file and prints its DAG: one node per stage
(download, decode per source; batch; upsert; snapshot; fetch; restore per
target), with what each works on (shard counts, limits, batch size,
destination) as labels. It reads no source and no server, and needs no
variable set (an unset one is a warning, and its value is left out).`,
		Example: `  snappipe graph configs/sample.yaml | dot -Tsvg > pipeline.svg
  snappipe graph configs/sample.yaml --format mermaid`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lo, err := load.options()
			if err != nil {
				return err
			}
			// The DAG needs no secrets: an unset variable is a warning
			// (on stderr), as with validate --allow-unset.
			lo.AllowUnset = true
			cfg, err := config.LoadPath(args[0], lo)
			if err != nil {
				return err
			}
			printWarnings(g, cfg)
			var opts pipeline.ApplyOptions
			if err := part.apply(&opts); err != nil {
				return err
			}
			p, err := pipeline.Compile(cfg, opts.Mode())
			if err != nil {
				return err
			}
			switch format {
			case "dot":
				fmt.Fprint(g.stdout, p.DOT())
			case "mermaid":
				fmt.Fprint(g.stdout, p.Mermaid())
			default:
				return fmt.Errorf("--format %q: dot or mermaid", format)
			}
			return nil
		},
	}
	load.register(cmd)
	part.register(cmd)
	cmd.Flags().StringVar(&format, "format", "dot", "dot (Graphviz) or mermaid")
	return cmd
}
