package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fake stages for the runner's contract.
type emitN struct{ n int }

func (s emitN) Run(ctx context.Context, io StageIO) error {
	for i := 0; i < s.n; i++ {
		if err := io.Emit(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

type sum struct{ got *atomic.Int64 }

func (s sum) Run(ctx context.Context, io StageIO) error {
	for _, in := range io.Inputs() {
		for {
			e, ok, err := io.Recv(ctx, in)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			s.got.Add(int64(e.Payload.(int)))
		}
	}
	return nil
}

type failAfter struct {
	n   int
	err error
}

func (s failAfter) Run(ctx context.Context, io StageIO) error {
	for i := 0; ; i++ {
		if i == s.n {
			return s.err
		}
		if _, ok, err := io.Recv(ctx, io.Inputs()[0]); err != nil || !ok {
			return err
		}
	}
}

type forever struct{}

func (forever) Run(ctx context.Context, io StageIO) error {
	for {
		if err := io.Emit(ctx, 1); err != nil {
			return err
		}
	}
}

func plan2(t *testing.T) *Plan {
	t.Helper()
	p := &Plan{Nodes: map[string]*Node{
		"a": {ID: "a", Kind: "a"}, "b": {ID: "b", Kind: "b"}, "sink": {ID: "sink", Kind: "sink", Reads: []string{"a", "b"}},
	}, Graph: NewGraph()}
	p.Graph.Connect("a", "sink")
	p.Graph.Connect("b", "sink")
	order, err := p.Graph.TopologicalOrder()
	if err != nil {
		t.Fatal(err)
	}
	p.Order = order
	return p
}

func TestRunnerDeliversEverything(t *testing.T) {
	var got atomic.Int64
	reg := NewRegistry()
	reg.Register("a", func(*Node, *Runtime) (Stage, error) { return emitN{100}, nil })
	reg.Register("b", func(*Node, *Runtime) (Stage, error) { return emitN{10}, nil })
	reg.Register("sink", func(*Node, *Runtime) (Stage, error) { return sum{&got}, nil })
	if err := Run(context.Background(), plan2(t), reg, &Runtime{}); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 99*100/2+9*10/2 {
		t.Fatalf("sum %d", got.Load())
	}
}

func TestRunnerReportsRootCauseOnce(t *testing.T) {
	boom := errors.New("boom")
	reg := NewRegistry()
	reg.Register("a", func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("b", func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("sink", func(*Node, *Runtime) (Stage, error) { return failAfter{5, boom}, nil })
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), plan2(t), reg, &Runtime{}) }()
	select {
	case err := <-done:
		var se *StageError
		if !errors.Is(err, boom) || !errors.As(err, &se) || se.Node != "sink" || strings.Contains(err.Error(), "context canceled") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("senders blocked: the failure did not cancel the other stages")
	}
}

func TestRunnerParentCancel(t *testing.T) {
	reg := NewRegistry()
	reg.Register("a", func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("b", func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("sink", func(*Node, *Runtime) (Stage, error) { return failAfter{1 << 30, nil}, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Run(ctx, plan2(t), reg, &Runtime{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration did not panic")
		}
	}()
	reg := NewRegistry()
	f := func(*Node, *Runtime) (Stage, error) { return forever{}, nil }
	reg.Register("x", f)
	reg.Register("x", f)
}
