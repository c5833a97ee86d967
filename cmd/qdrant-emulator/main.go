// Command qdrant-emulator runs the in-memory Qdrant emulator (a test double,
// not Qdrant) on a gRPC and a REST address.
//
// When both listeners accept it prints exactly one line on stdout,
//
//	ready grpc=HOST:PORT http=HOST:PORT
//
// then logs only to stderr. SIGINT or SIGTERM stop it with exit status 0.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"google.golang.org/grpc/codes"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("qdrant-emulator", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: qdrant-emulator [flags]\n\nAn in-memory Qdrant emulator for tests and demos (not Qdrant).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:6334", "gRPC listen address (port 0 picks a free port)")
	httpAddr := fs.String("http-addr", "127.0.0.1:6333", "REST listen address (port 0 picks a free port)")
	apiKey := fs.String("api-key", "", "require this API key (gRPC metadata api-key; REST api-key or Authorization: Bearer)")
	snapDir := fs.String("snapshots-dir", "", "directory for snapshot files (default: a temporary directory removed on exit)")
	discard := fs.Bool("discard", false, "validate and count upserted points but keep none (for benchmarks)")
	sink := fs.Bool("sink", false, "no-op sink for measuring a client's CPU: count upserted points without decoding or validating them, keep none (implies --discard)")
	strictWait := fs.Bool("strict-wait", false, "report apply errors of wait=false upserts instead of dropping them as Qdrant does")
	logLevel := fs.String("log-level", "info", "stderr log level: debug, info, warn, error")
	npeers := fs.Int("peers", 0, "cluster mode: run N peers in one process on free ports (shard k on peer k mod N); the ready line lists them in order")
	var f qdrantemu.Faults
	fs.DurationVar(&f.UpsertDelay, "upsert-delay", 0, "fault: delay every upsert by this duration")
	fs.IntVar(&f.FailUpserts, "fail-upserts", 0, "fault: fail the next N upserts with --fail-code")
	failCode := fs.String("fail-code", "unavailable", "fault: code of injected upsert failures: unavailable, resource_exhausted, internal")
	fs.IntVar(&f.RetryAfter, "retry-after", 0, "fault: send this retry-after trailer (seconds) with resource_exhausted failures")
	fs.Float64Var(&f.FailRate, "fail-rate", 0, "fault: fail each upsert with this probability (0..1)")
	fs.Uint64Var(&f.Seed, "seed", 1, "fault: seed of the --fail-rate generator")
	fs.DurationVar(&f.SnapshotDelay, "snapshot-delay", 0, "fault: snapshot creation takes this long (it finishes in the background even if the caller gives up)")
	fs.Int64Var(&f.TruncateDownloadAfter, "truncate-download-after", 0, "fault: drop snapshot download connections after this many bytes")
	fs.Int64Var(&f.DownloadRate, "download-rate", 0, "fault: serve snapshot downloads at most this many bytes a second")
	fs.IntVar(&f.CorruptDownloads, "corrupt-downloads", 0, "fault: the next N snapshot downloads serve wrong bytes (same length; the listed checksum no longer matches)")
	fs.DurationVar(&f.AsyncApplyDelay, "async-apply-delay", 0, "fault: apply wait=false upserts this long after acknowledging them, as Qdrant does after its WAL append")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	switch strings.ToLower(*failCode) {
	case "unavailable":
		f.FailCode = codes.Unavailable
	case "resource_exhausted":
		f.FailCode = codes.ResourceExhausted
	case "internal":
		f.FailCode = codes.Internal
	default:
		fmt.Fprintf(os.Stderr, "qdrant-emulator: --fail-code %q: expected unavailable, resource_exhausted or internal\n", *failCode)
		return 2
	}
	if f.FailRate < 0 || f.FailRate > 1 {
		fmt.Fprintf(os.Stderr, "qdrant-emulator: --fail-rate %v: expected a probability from 0 to 1\n", f.FailRate)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "qdrant-emulator: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := qdrantemu.Options{APIKey: *apiKey, SnapshotsDir: *snapDir, Discard: *discard, Sink: *sink, StrictWait: *strictWait, Faults: f, Logger: logger}
	var peers []*qdrantemu.Server
	if *npeers > 0 {
		// Cluster mode: N peers on free ports of 127.0.0.1 (the address
		// flags do not apply), listed in order on the ready line.
		var err error
		if peers, err = qdrantemu.StartCluster(*npeers, opts); err != nil {
			fmt.Fprintf(os.Stderr, "qdrant-emulator: %v\n", err)
			return 1
		}
	} else {
		srv, err := qdrantemu.Start(*grpcAddr, *httpAddr, opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "qdrant-emulator: %v\n", err)
			return 1
		}
		peers = []*qdrantemu.Server{srv}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var g, h []string
	for _, p := range peers {
		g, h = append(g, p.GRPCAddr()), append(h, p.HTTPAddr())
	}
	fmt.Printf("ready grpc=%s http=%s\n", strings.Join(g, ","), strings.Join(h, ","))
	s := <-sig
	logger.Info("stopping", "signal", s.String())
	for _, p := range peers {
		if err := p.Close(); err != nil {
			logger.Warn("close", "err", err)
		}
	}
	return 0
}
