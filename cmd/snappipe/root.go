package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/snappipe/snappipe/pipeline/config"
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

// loggerTo is the logger writing to w (the progress display's writer while
// bars are drawn).
func (g *globalOptions) loggerTo(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
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
		// Libraries that log through slog's default logger (go-client
		// warns when an API key goes over plain HTTP) log as snappipe
		// does: its format, its --log-level, on stderr.
		PersistentPreRun: func(*cobra.Command, []string) {
			slog.SetDefault(slog.New(newOnceHandler(g.loggerTo(g.stderr).Handler())))
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level on stderr: debug, info, warn, error")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "result format on stdout: text or json (NDJSON events)")
	root.PersistentFlags().StringVar(&g.progress, "progress", "auto", "progress display: auto, always or never")
	root.PersistentFlags().BoolVar(&g.noColor, "no-color", false, "disable colour (also NO_COLOR)")
	root.AddCommand(newApplyCommand(g), newPlanCommand(g), newValidateCommand(g), newStatusCommand(g), newSchemaCommand(g), newVersionCommand(g), newSnapshotsCommand(g), newGraphCommand(g), newInitCommand(g))
	return root
}

func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	track := &jsonTracker{w: stdout}
	g := &globalOptions{stdout: track, stderr: stderr, stdin: stdin}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	defer slog.SetDefault(slog.Default()) // the process's logger back (tests run many commands)
	ctx, stop := signalContext()
	defer stop()
	ctx = context.WithValue(ctx, inFlightKey{}, inFlightCtx)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if g.output == "json" {
		closeJSONStream(g, track, err)
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.err != nil {
			printError(stderr, ec.err, g)
		}
		return ec.code
	}
	printError(stderr, err, g)
	return exitError
}

func printError(w io.Writer, err error, g *globalOptions) {
	var ds config.Diagnostics
	if errors.As(err, &ds) {
		printDiags(w, g, ds)
		fmt.Fprintf(w, "%d problem(s) found\n", len(ds))
		return
	}
	fmt.Fprintf(w, "Error: %v\n", err)
}

// jsonTracker watches the NDJSON events written to stdout, so a failing
// command's stream can be completed: the version event first, an error
// event last, whatever failed (a config that does not load, a plan with
// problems, an invalid validate).
type jsonTracker struct {
	w         io.Writer
	versioned bool
	ended     bool
}

func (t *jsonTracker) Write(p []byte) (int, error) {
	switch {
	case bytes.HasPrefix(p, []byte(`{"type":"version"`)):
		t.versioned = true
	case bytes.HasPrefix(p, []byte(`{"type":"error"`)):
		t.ended = true
	}
	return t.w.Write(p)
}

// closeJSONStream holds the -o json contract for a command that failed:
// a version event if none was sent, the config's diagnostics as
// diagnostic events, and an error event last.
func closeJSONStream(g *globalOptions, t *jsonTracker, err error) {
	var ec *exitCodeError
	code := exitError
	if errors.As(err, &ec) {
		code = ec.code
		err = ec.err
	}
	if code == exitOK || code == exitChanges || t.ended {
		return
	}
	ev := newEvents(&globalOptions{output: "text", stdout: g.stdout, stderr: g.stderr, progress: "never"}, nil)
	ev.out = g.stdout
	if !t.versioned {
		ev.emit(map[string]any{"type": "version", "ui": uiVersion, "snappipe": version})
	}
	msg := "failed"
	var ds config.Diagnostics
	switch {
	case errors.As(err, &ds):
		for _, d := range ds {
			ev.emit(map[string]any{"type": "diagnostic", "severity": d.Severity, "file": d.File, "line": d.Line, "column": d.Column,
				"end_line": d.EndLine, "end_column": d.EndColumn, "path": d.Path, "message": d.Message})
		}
		msg = fmt.Sprintf("%d problem(s) found", len(ds))
	case err != nil:
		msg = err.Error()
	}
	ev.emit(map[string]any{"type": "error", "message": msg, "exit_code": code})
}

// maxPrinted bounds the diagnostics printed as text: a file with thousands
// of problems shows the first ones and a count (-o json lists them all).
const maxPrinted = 50

// printDiags prints at most maxPrinted diagnostics, then how many more
// there are.
func printDiags(w io.Writer, g *globalOptions, ds config.Diagnostics) {
	dp := newDiagPrinter(w, g)
	for i, d := range ds {
		if i == maxPrinted {
			fmt.Fprintf(w, "... and %d more\n", len(ds)-maxPrinted)
			break
		}
		dp.print(w, d)
	}
}

// interruptGrace bounds how long upserts already sent may take to be
// acknowledged after the first interrupt.
const interruptGrace = 15 * time.Second

type inFlightKey struct{}

// inFlightCtx is cancelled interruptGrace after the first signal.
var inFlightCtx context.Context

// signalContext cancels on the first SIGINT/SIGTERM: no new batch is sent,
// batches in flight get interruptGrace to be acknowledged and recorded. The
// second signal exits at once. State stays valid either way: it is only
// written atomically.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	inflight, cancelInflight := context.WithCancel(context.Background())
	inFlightCtx = inflight
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s, ok := <-ch
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "%s: stopping; waiting up to %s for batches in flight (again to exit now)\n", s, interruptGrace)
		cancel(&interrupted{s})
		time.AfterFunc(interruptGrace, cancelInflight)
		if _, ok := <-ch; ok {
			fmt.Fprintln(os.Stderr, "second interrupt: exiting now; the checkpoint is intact")
			os.Exit(exitInterrupted)
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil); cancelInflight() }
}

type interrupted struct{ sig os.Signal }

func (i *interrupted) Error() string { return "interrupted by " + i.sig.String() }

// onceHandler passes each distinct message once: a library warning made
// per connection (go-client's "API key is being used without TLS") is
// said once per run.
type onceHandler struct {
	slog.Handler
	seen *sync.Map
}

func newOnceHandler(h slog.Handler) *onceHandler { return &onceHandler{h, new(sync.Map)} }

func (h *onceHandler) Handle(ctx context.Context, r slog.Record) error {
	if _, dup := h.seen.LoadOrStore(r.Level.String()+" "+r.Message, true); dup {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs and WithGroup keep the messages said once across the loggers
// derived with With.
func (h *onceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &onceHandler{h.Handler.WithAttrs(as), h.seen}
}

func (h *onceHandler) WithGroup(name string) slog.Handler {
	return &onceHandler{h.Handler.WithGroup(name), h.seen}
}
