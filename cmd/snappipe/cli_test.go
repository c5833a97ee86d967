package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

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
	})
}
