package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/qdrant/go-client/qdrant"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/snappipe/snappipe/internal/qdrantemu"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	testscript.Main(m, map[string]func(){
		"snappipe": func() { os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestCLI runs testdata/script/*.txtar. Each script gets a fresh emulator
// (API key "test-api-key-9f3") in QDRANT_URL / QDRANT_GRPC_PORT, the sample
// data in $SAMPLE, and the repo's configs in $CONFIGS.
func TestCLI(t *testing.T) {
	wd, _ := os.Getwd()
	root := filepath.Join(wd, "..", "..")
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(e *testscript.Env) error {
			srv, err := qdrantemu.Start("127.0.0.1:0", "127.0.0.1:0", qdrantemu.Options{APIKey: "test-api-key-9f3"})
			if err != nil {
				return err
			}
			e.Defer(func() { srv.Close() })
			e.Values[emuKey{}] = srv
			_, port, _ := net.SplitHostPort(srv.GRPCAddr())
			e.Setenv("QDRANT_URL", srv.URL())
			e.Setenv("QDRANT_GRPC_PORT", port)
			e.Setenv("QDRANT_API_KEY", "test-api-key-9f3")
			e.Setenv("SAMPLE", filepath.Join(root, "testdata", "sample"))
			e.Setenv("CONFIGS", filepath.Join(root, "configs"))
			e.Setenv("CI", "true")
			return nil
		},
		UpdateScripts: os.Getenv("UPDATE_SCRIPTS") != "",
		Cmds:          map[string]func(ts *testscript.TestScript, neg bool, args []string){"points": cmdPoints, "setsnap": cmdSetSnap},
	})
}

type emuKey struct{}

// cmdSetSnap is `setsnap DIR`: $SNAPFILE becomes the name of the one
// .snapshot file in DIR.
func cmdSetSnap(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: setsnap DIR")
	}
	m, _ := filepath.Glob(filepath.Join(ts.MkAbs(args[0]), "*.snapshot"))
	if len(m) != 1 {
		ts.Fatalf("%s holds %d snapshot files", args[0], len(m))
	}
	ts.Setenv("SNAPFILE", filepath.Base(m[0]))
}

// cmdPoints is `points COLLECTION N [SHARDS]`: the script's emulator holds
// exactly N points in COLLECTION (and it has SHARDS shards), read back over
// gRPC, not from snappipe's own report.
func cmdPoints(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: points COLLECTION N [SHARDS]")
	}
	srv := ts.Value(emuKey{}).(*qdrantemu.Server)
	c, err := qdrant.NewClient(&qdrant.Config{Host: "127.0.0.1", Port: grpcPort(srv), APIKey: "test-api-key-9f3", SkipCompatibilityCheck: true})
	ts.Check(err)
	defer c.Close()
	ctx := context.Background()
	n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: args[0], Exact: qdrant.PtrOf(true)})
	ts.Check(err)
	ok := fmt.Sprint(n) == args[1]
	info, err := c.GetCollectionInfo(ctx, args[0])
	ts.Check(err)
	if len(args) == 3 {
		ok = ok && fmt.Sprint(info.GetConfig().GetParams().GetShardNumber()) == args[2]
	}
	if ok == neg {
		ts.Fatalf("collection %s holds %d points in %d shards; want %s", args[0], n, info.GetConfig().GetParams().GetShardNumber(), strings.Join(args[1:], " points in shards: "))
	}
}

func grpcPort(srv *qdrantemu.Server) int {
	_, p, _ := net.SplitHostPort(srv.GRPCAddr())
	n, _ := strconv.Atoi(p)
	return n
}
