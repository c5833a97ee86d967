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
type num int

func (num) MessageKind() string { return "num" }

type other struct{}

func (other) MessageKind() string { return "other" }

var numOut, numIn = Ports{Emits: []string{"num"}}, Ports{Consumes: []string{"num"}}

type emitN struct{ n int }

func (s emitN) Run(ctx context.Context, io StageIO) error {
	for i := 0; i < s.n; i++ {
		if err := io.Emit(ctx, num(i)); err != nil {
			return err
		}
	}
	return nil
}

type sum struct{ got *atomic.Int64 }

func (s sum) Run(ctx context.Context, io StageIO) error {
	for _, in := range io.Inputs() {
		for {
			m, ok, err := Receive[num](ctx, io, in)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			s.got.Add(int64(m))
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
		if err := io.Emit(ctx, num(1)); err != nil {
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
	reg.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{100}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{10}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return sum{&got}, nil })
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
	reg.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return failAfter{5, boom}, nil })
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
	reg.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return failAfter{1 << 30, nil}, nil })
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
	reg.Register("x", numOut, f)
	reg.Register("x", numOut, f)
}

// Edges are checked against the declared ports before anything runs.
func TestRegistryChecksEdges(t *testing.T) {
	reg := NewRegistry()
	reg.Register("a", Ports{Emits: []string{"num", "other"}}, func(*Node, *Runtime) (Stage, error) { return emitN{1}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{1}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return sum{new(atomic.Int64)}, nil })
	err := Run(context.Background(), plan2(t), reg, &Runtime{})
	if err == nil || !strings.Contains(err.Error(), "edge a -> sink: a emits other, which sink does not consume") {
		t.Fatalf("err = %v", err)
	}
	reg2 := NewRegistry()
	reg2.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{1}, nil })
	reg2.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return sum{new(atomic.Int64)}, nil })
	if err := Run(context.Background(), plan2(t), reg2, &Runtime{}); err == nil || !strings.Contains(err.Error(), `b: no stage registered for kind "b"`) {
		t.Fatalf("err = %v", err)
	}
}

// A stage that emits an undeclared kind gets an error, and a receiver of
// an unexpected type gets an error naming both: no panic anywhere.
type emitOther struct{}

func (emitOther) Run(ctx context.Context, io StageIO) error { return io.Emit(ctx, other{}) }

type recvOther struct{ err *error }

func (s recvOther) Run(ctx context.Context, io StageIO) error {
	for _, in := range io.Inputs() {
		_, _, err := Receive[other](ctx, io, in)
		if err != nil {
			*s.err = err
			return err
		}
	}
	return nil
}

func TestUndeclaredAndUnexpectedMessages(t *testing.T) {
	reg := NewRegistry()
	reg.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return emitOther{}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{0}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return sum{new(atomic.Int64)}, nil })
	err := Run(context.Background(), plan2(t), reg, &Runtime{})
	if err == nil || !strings.Contains(err.Error(), "do not declare") {
		t.Fatalf("undeclared emit: %v", err)
	}
	var got error
	reg = NewRegistry()
	reg.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{1}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{1}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return recvOther{&got}, nil })
	err = Run(context.Background(), plan2(t), reg, &Runtime{})
	if err == nil || !strings.Contains(err.Error(), "got num (pipeline.num) from a, expected pipeline.other") {
		t.Fatalf("unexpected type: %v", err)
	}
}

// A stage whose input failed gets ErrUpstreamFailed from Recv; the run
// reports the upstream's error alone.
type failNow struct{ err error }

func (s failNow) Run(context.Context, StageIO) error { return s.err }

type waitAll struct{ saw *error }

func (s waitAll) Run(ctx context.Context, io StageIO) error {
	for _, in := range io.Inputs() {
		for {
			_, ok, err := io.Recv(ctx, in)
			if err != nil {
				*s.saw = err
				return err
			}
			if !ok {
				break
			}
		}
	}
	return nil
}

func TestUpstreamFailureIsTheRunnersBusiness(t *testing.T) {
	boom := errors.New("boom")
	var saw error
	reg := NewRegistry()
	reg.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return failNow{boom}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return emitN{0}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return waitAll{&saw}, nil })
	err := Run(context.Background(), plan2(t), reg, &Runtime{})
	var se *StageError
	if !errors.Is(err, boom) || !errors.As(err, &se) || se.Node != "a" {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(saw, ErrUpstreamFailed) && !errors.Is(saw, context.Canceled) {
		t.Fatalf("the sink saw %v", saw)
	}
}
