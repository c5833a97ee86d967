package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			qc := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, d := range bi.Deps {
					if d.Path == "github.com/qdrant/go-client" {
						qc = d.Version
					}
				}
			}
			if asJSON || g.output == "json" {
				return json.NewEncoder(g.stdout).Encode(map[string]string{"version": version, "go": runtime.Version(), "qdrant_go_client": qc})
			}
			fmt.Fprintf(g.stdout, "snappipe %s (%s, qdrant go-client %s)\n", version, runtime.Version(), qc)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
