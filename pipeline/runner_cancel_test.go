package pipeline

import (
	"context"
	"errors"
	"testing"
)

// A cancelled parent context is returned as is, not as a stage error.
func TestRunnerParentCancelReturnsCtxErr(t *testing.T) {
	reg := NewRegistry()
	reg.Register("a", numOut, func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("b", numOut, func(*Node, *Runtime) (Stage, error) { return forever{}, nil })
	reg.Register("sink", numIn, func(*Node, *Runtime) (Stage, error) { return failAfter{3, nil}, nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, plan2(t), reg, &Runtime{})
	var se *StageError
	if !errors.Is(err, context.Canceled) || errors.As(err, &se) {
		t.Fatalf("err = %#v", err)
	}
}
