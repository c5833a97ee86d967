// Package stagetest runs one stage alone, for the stage packages' unit
// tests: given messages on its inputs, it returns what the stage emitted.
package stagetest

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Run runs s (of the given ports) with inputs, a message list per upstream
// id, each input closed after its list. It returns the emitted messages and
// the stage's error.
func Run(ctx context.Context, id string, ports pipeline.Ports, s pipeline.Stage, inputs map[string][]pipeline.Message) ([]pipeline.Message, error) {
	in := map[string]<-chan pipeline.Envelope{}
	for up, msgs := range inputs {
		ch := make(chan pipeline.Envelope, len(msgs))
		for _, m := range msgs {
			ch <- pipeline.Envelope{From: up, Msg: m}
		}
		close(ch)
		in[up] = ch
	}
	out := make(chan pipeline.Envelope)
	var got []pipeline.Message
	done := make(chan struct{})
	go func() {
		for e := range out {
			got = append(got, e.Msg)
		}
		close(done)
	}()
	err := s.Run(ctx, pipeline.NewStageIO(id, ports, in, out))
	close(out)
	<-done
	return got, err
}

// Runtime is a runtime for one stage: cfg, a discarding logger, and a
// checkpoint in the test's temporary directory (opened fresh, or seeded
// by seed).
func Runtime(t testing.TB, cfg *config.Config, seed func(*pipeline.State)) (*pipeline.Runtime, *pipeline.StateFile) {
	t.Helper()
	sf, _, err := pipeline.OpenState(filepath.Join(t.TempDir(), "test.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if seed != nil {
		if err := sf.Update(seed); err != nil {
			t.Fatal(err)
		}
	}
	rt := &pipeline.Runtime{Config: cfg, Log: slog.New(slog.DiscardHandler), Summary: &pipeline.Summary{}, Events: pipeline.NopEvents{},
		HTTP: &http.Client{}, CacheDir: filepath.Join(t.TempDir(), "cache")}
	rt.SetCheckpoint(sf)
	return rt, sf
}
