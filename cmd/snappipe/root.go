package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/spf13/cobra"
)

// Exit codes (documented in the README).
const (
	exitOK          = 0
	exitError       = 1
	exitChanges     = 2 // plan --detailed-exitcode: changes pending
	exitInterrupted = 130
)

// exitError carries a specific exit code.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitCodeError) Unwrap() error { return e.err }

type globalOptions struct {
	logLevel string
	output   string
	progress string
	noColor  bool
	stdout   io.Writer
	stderr   io.Writer
	stdin    io.Reader
}

func (g *globalOptions) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "snappipe",
		Short: "Turn a pipeline YAML file into a verified Qdrant snapshot file",
		Long: `snappipe reads a pipeline file (sources: Parquet metadata and .npy or Parquet
embeddings, local or over HTTP(S); the collection; a row limit; where the
snapshot lands), loads the rows into Qdrant, creates a collection snapshot on
the server and downloads it, checksum-verified, into the destination.

An interrupted apply resumes from its checkpoint when run again.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level on stderr: debug, info, warn, error")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "result format on stdout: text or json (NDJSON events)")
	root.PersistentFlags().StringVar(&g.progress, "progress", "auto", "progress display: auto, always or never")
	root.PersistentFlags().BoolVar(&g.noColor, "no-color", false, "disable colour (also NO_COLOR)")
	root.AddCommand(newApplyCommand(g), newPlanCommand(g), newValidateCommand(g), newStatusCommand(g), newSchemaCommand(g), newVersionCommand(g))
	return root
}

func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globalOptions{stdout: stdout, stderr: stderr, stdin: stdin}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ctx, stop := signalContext()
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.err != nil {
			printError(stderr, ec.err)
		}
		return ec.code
	}
	printError(stderr, err)
	return exitError
}

func printError(w io.Writer, err error) {
	var ds pipeline.Diagnostics
	if errors.As(err, &ds) {
		for _, d := range ds {
			fmt.Fprintln(w, d.String())
		}
		fmt.Fprintf(w, "%d problem(s) found\n", len(ds))
		return
	}
	fmt.Fprintf(w, "Error: %v\n", err)
}

// signalContext cancels on the first SIGINT/SIGTERM and exits at once on
// the second. State stays valid either way: it is only written atomically.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s, ok := <-ch
		if !ok {
			return
		}
		cancel(&interrupted{s})
		if _, ok := <-ch; ok {
			fmt.Fprintln(os.Stderr, "second interrupt: exiting now")
			os.Exit(exitInterrupted)
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

type interrupted struct{ sig os.Signal }

func (i *interrupted) Error() string { return "interrupted by " + i.sig.String() }
