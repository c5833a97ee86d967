package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type loadFlags struct {
	sets     []string
	envFiles []string
}

func (l *loadFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&l.sets, "set", nil, "override a config value: --set key.path=value (repeatable; wins over the file)")
	cmd.Flags().StringArrayVarP(&l.envFiles, "env-file", "e", nil, "read ${VAR} values from a KEY=VALUE file (the environment wins)")
}

func (l *loadFlags) options() (config.LoadOptions, error) {
	files := map[string]string{}
	for _, f := range l.envFiles {
		m, err := config.ReadEnvFile(f)
		if err != nil {
			return config.LoadOptions{}, err
		}
		for k, v := range m {
			files[k] = v
		}
	}
	return config.LoadOptions{Lookup: config.EnvLookup(files), Sets: l.sets}, nil
}

type applyOptions struct {
	load        loadFlags
	stateDir    string
	fullRefresh bool
	autoApprove bool
	lockTimeout time.Duration
	dryRun      bool
	detailed    bool
	cpuProfile  string
	memProfile  string
	part        partFlags
}

// partFlags are --partition, --finalize and --partitions (apply, plan and
// status).
type partFlags struct {
	partition  string
	finalize   bool
	partitions int
}

func (p *partFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.partition, "partition", "", "load only partition I of N of a shard set (shard k belongs to partition k mod N), with its own checkpoint and no snapshot; I/N, or auto/N to read $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)")
	cmd.Flags().BoolVar(&p.finalize, "finalize", false, "load nothing: check the collection holds every planned row (the partitions loaded it), then snapshot and fetch")
	cmd.Flags().IntVar(&p.partitions, "partitions", 0, "with --finalize: the partition count, to name the partitions whose shards are incomplete")
}

// apply sets the partition options on opts.
func (p *partFlags) apply(opts *pipeline.ApplyOptions) error {
	opts.Finalize, opts.Partitions = p.finalize, p.partitions
	if p.partition == "" {
		return nil
	}
	part, err := parsePartition(p.partition, os.Getenv)
	if err != nil {
		return err
	}
	opts.Partition = part
	return nil
}

// parsePartition reads I/N, or auto/N with I from $JOB_COMPLETION_INDEX.
func parsePartition(s string, getenv func(string) string) (*pipeline.Partition, error) {
	a, b, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(b)
	if !ok || err != nil || n < 1 {
		return nil, fmt.Errorf("--partition %q: want I/N (0 <= I < N) or auto/N", s)
	}
	if a == "auto" {
		a = getenv("JOB_COMPLETION_INDEX")
		if a == "" {
			return nil, fmt.Errorf("--partition auto/%d: JOB_COMPLETION_INDEX is not set (it is in a Kubernetes Indexed Job's pods)", n)
		}
	}
	i, err := strconv.Atoi(a)
	if err != nil || i < 0 || i >= n {
		return nil, fmt.Errorf("--partition %q: index %q is not in 0..%d", s, a, n-1)
	}
	return &pipeline.Partition{I: i, N: n}, nil
}

func newApplyCommand(g *globalOptions) *cobra.Command {
	o := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply PATH",
		Short: "Load the data into Qdrant and write the snapshot file (resumes when interrupted)",
		Example: `  snappipe apply configs/sample.yaml
  QDRANT_URL=http://qdrant:6333 snappipe apply pipeline.yaml -y
  snappipe apply pipeline.yaml --full-refresh -y   # discard the checkpoint, recreate the collection`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runApply(cmd.Context(), g, o, args[0]) },
	}
	o.load.register(cmd)
	stateDirFlag(cmd, &o.stateDir)
	cmd.Flags().BoolVar(&o.fullRefresh, "full-refresh", false, "discard the checkpoint and start over (recreates the collection; needs -y when it holds points)")
	cmd.Flags().BoolVarP(&o.autoApprove, "auto-approve", "y", false, "do not ask before dropping a collection that holds points")
	cmd.Flags().DurationVar(&o.lockTimeout, "lock-timeout", 0, "wait this long for another run of the same pipeline to finish")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show what apply would do and change nothing (same as plan)")
	cmd.Flags().BoolVar(&o.detailed, "detailed-exitcode", false, "with --dry-run: exit 2 when apply has work to do, 0 when not, 1 on error (as plan)")
	cmd.Flags().StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	cmd.Flags().StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this file at the end")
	o.part.register(cmd)
	return cmd
}

// stateDirFlag registers --state-dir, shared by apply, plan and status.
func stateDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "state-dir", "", "directory of the checkpoint, lock and download cache (default: .snappipe beside the config)")
}

func isTTY(f any) bool {
	if fd, ok := f.(*os.File); ok {
		return term.IsTerminal(int(fd.Fd()))
	}
	return false
}

// askYes asks question on the terminal and accepts only "yes". Without a
// terminal it returns noTerminal; when not confirmed, "WHAT not confirmed".
func askYes(g *globalOptions, question, what string, noTerminal error) error {
	if !isTTY(g.stdin) || !isTTY(g.stderr) {
		return noTerminal
	}
	fmt.Fprintf(g.stderr, "%s Only 'yes' is accepted: ", question)
	line, _ := bufio.NewReader(g.stdin.(*os.File)).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New(what + " not confirmed")
	}
	return nil
}

func runApply(ctx context.Context, g *globalOptions, o *applyOptions, path string) error {
	if o.dryRun {
		return runPlan(ctx, g, &planOptions{load: o.load, stateDir: o.stateDir, detailedExitcode: o.detailed, part: o.part}, path)
	}
	if o.detailed {
		return &exitCodeError{code: exitError, err: errors.New("--detailed-exitcode needs --dry-run (or use snappipe plan --detailed-exitcode)")}
	}
	tuneGC()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		defer func() {
			if f, err := os.Create(o.memProfile); err == nil {
				runtime.GC()
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}()
	}
	lo, err := o.load.options()
	if err != nil {
		return err
	}
	cfg, err := config.LoadPath(path, lo)
	if err != nil {
		return err
	}
	printWarnings(g, cfg)
	// Progress first: on a terminal, log lines are printed above the bars
	// (whole, each once) instead of through them.
	events := newEvents(g, nil)
	defer events.Close()
	log := g.loggerTo(events.logWriter())
	events.log = log
	slog.SetDefault(slog.New(newOnceHandler(log.Handler()))) // above the progress bars too
	confirm := func(collection string, points uint64) error {
		if o.autoApprove {
			return nil
		}
		return askYes(g, fmt.Sprintf("Collection %q holds %d points. Drop and recreate it?", collection, points), "recreate",
			fmt.Errorf("collection %q holds %d points and would be dropped; no terminal to confirm on: re-run with -y (--auto-approve)", collection, points))
	}
	aopts := pipeline.ApplyOptions{
		StateDir: o.stateDir, FullRefresh: o.fullRefresh, LockTimeout: o.lockTimeout,
		ConfirmRecreate: confirm, Log: log,
		InFlight: inFlight(ctx), Version: version,
	}
	if err := o.part.apply(&aopts); err != nil {
		return err
	}
	aopts.Events = events
	start := time.Now()
	sum, err := pipeline.Apply(ctx, cfg, all.Registry(), aopts)
	events.Close()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			var in *interrupted
			if errors.As(cause, &in) {
				events.emit(map[string]any{"type": "error", "message": "interrupted; progress is saved", "exit_code": exitInterrupted})
				fmt.Fprintf(g.stderr, "Interrupted: progress is saved. Run the same command to resume:\n  snappipe apply %s\n", path)
				return &exitCodeError{code: exitInterrupted}
			}
		}
		events.emit(map[string]any{"type": "error", "message": err.Error(), "exit_code": exitError})
		return err
	}
	elapsed := time.Since(start)
	if g.output == "json" {
		return events.Summary(sum, elapsed)
	}
	fmt.Fprintf(g.stdout, "Apply complete: %d points written", sum.PointsWritten)
	if sum.Resumed {
		fmt.Fprint(g.stdout, " (resumed)")
	}
	fmt.Fprintf(g.stdout, " in %s\n", elapsed.Round(time.Millisecond))
	if aopts.Partition != nil {
		fmt.Fprintf(g.stdout, "Partition %s loaded; run `snappipe apply --finalize --partitions %d %s` once every partition is done\n", aopts.Partition, aopts.Partition.N, path)
		return nil
	}
	fmt.Fprintf(g.stdout, "Snapshot: %s\n  size:   %d bytes (%s)\n  sha256: %s\n", sum.SnapshotPath, sum.SnapshotSize, formatBytes(sum.SnapshotSize), sum.SnapshotSHA256)
	fmt.Fprintf(g.stdout, "Fetched: %s from sources and server\n", formatBytes(sum.BytesFetched))
	return nil
}

func inFlight(ctx context.Context) context.Context {
	if c, ok := ctx.Value(inFlightKey{}).(context.Context); ok && c != nil {
		return c
	}
	return nil
}

// tuneGC trades a little memory for less GC work during apply (profiles
// showed GC at ~10% of CPU): GOGC 200 with a 192 MiB soft heap limit that
// keeps peak RSS flat and under 256 MiB. GOGC and GOMEMLIMIT still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(192 << 20)
	}
}
