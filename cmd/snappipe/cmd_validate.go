package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/spf13/cobra"
)

type validateOptions struct {
	load       loadFlags
	allowUnset bool
}

func newValidateCommand(g *globalOptions) *cobra.Command {
	o := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check pipeline files offline and report every problem at once",
		Long: `validate reads each file (a directory means every *.yaml and *.yml in it; - is
standard input), expands ${VAR} references, and reports every problem as
file:line:col: key.path: message. It exits 1 if any file has a problem.
With --allow-unset, a variable without a value is a warning instead and the
key it is in is not checked: a config committed with ${SECRET} references
can be checked where the secrets are not set.`,
		Example: `  snappipe validate configs/
  snappipe validate pipeline.yaml --env-file .env
  snappipe validate configs/ --allow-unset   # in CI, without the secrets
  cat pipeline.yaml | snappipe validate -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runValidate(g, o, args) },
	}
	o.load.register(cmd)
	cmd.Flags().BoolVar(&o.allowUnset, "allow-unset", false, "a ${VAR} without a value is a warning and its key goes unchecked (check a committed config where its secrets are not set, e.g. in CI)")
	return cmd
}

func expandPaths(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a == "-" {
			out = append(out, a)
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		var found []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(a, pat))
			found = append(found, m...)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no *.yaml or *.yml files", a)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func runValidate(g *globalOptions, o *validateOptions, args []string) error {
	lo, err := o.load.options()
	if err != nil {
		return err
	}
	lo.AllowUnset = o.allowUnset
	paths, err := expandPaths(args)
	if err != nil {
		return err
	}
	var all config.Diagnostics
	var other []string
	errs := 0
	for _, p := range paths {
		cfg, err := config.LoadPath(p, lo)
		var ds config.Diagnostics
		switch {
		case err == nil:
			all = append(all, cfg.Warnings...)
		case errors.As(err, &ds):
			all = append(all, ds...)
		default:
			other = append(other, fmt.Sprintf("%s: %v", p, err))
		}
	}
	for _, d := range all {
		if !d.IsWarning() {
			errs++
		}
	}
	problems := errs + len(other)
	if g.output == "json" {
		ev := newEvents(&globalOptions{output: "json", stdout: g.stdout, stderr: g.stderr, progress: "never"}, nil)
		for _, d := range all {
			ev.emit(map[string]any{"type": "diagnostic", "severity": d.Severity, "file": d.File, "line": d.Line, "column": d.Column,
				"end_line": d.EndLine, "end_column": d.EndColumn, "path": d.Path, "message": d.Message})
		}
		ev.emit(map[string]any{"type": "summary", "files": len(paths), "problems": problems, "warnings": len(all) - errs, "valid": problems == 0})
		ev.Close()
		if problems > 0 {
			return &exitCodeError{code: exitError, err: fmt.Errorf("%d problem(s) in %s", problems, strings.Join(paths, ", "))}
		}
		return nil
	}
	printDiags(g.stdout, g, all)
	for _, o := range other {
		fmt.Fprintln(g.stdout, o)
	}
	if problems == 0 {
		fmt.Fprintf(g.stdout, "%d file(s) valid\n", len(paths))
		return nil
	}
	return &exitCodeError{code: exitError, err: fmt.Errorf("%d problem(s) in %s", problems, strings.Join(paths, ", "))}
}
