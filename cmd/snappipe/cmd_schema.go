package main

import (
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/spf13/cobra"
)

func newSchemaCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema (draft-07) of pipeline files",
		Long: `schema prints the JSON Schema of pipeline files, for editors: add
  # yaml-language-server: $schema=PATH/TO/snappipe.schema.json
as the first line of a pipeline file. The same schema is committed as
schema/snappipe.schema.json.`,
		Example: "  snappipe schema > snappipe.schema.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := config.JSONSchema()
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
}
