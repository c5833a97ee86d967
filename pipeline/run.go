package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// edgeBuffer bounds every edge: memory stays flat whatever the input size.
const edgeBuffer = 4

// Run executes the plan's stages concurrently under one errgroup. The first
// stage error cancels all others; Run returns that root cause alone, with
// the node id, never the follow-on cancellations.
func Run(ctx context.Context, p *Plan, reg *Registry, rt *Runtime) error {
	if rt.Events == nil {
		rt.Events = NopEvents{}
	}
	if err := reg.Check(p); err != nil {
		return err
	}
	stages := map[string]Stage{}
	for _, id := range p.Order {
		n := p.Nodes[id]
		s, err := reg.kinds[n.Kind].new(n, rt)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		stages[id] = s
	}
	// Stages that can tell before any work that they would fail say so
	// now, all at once (a destination that is not writable must not be
	// found only after the load).
	var pre []error
	for _, id := range p.Order {
		if c, ok := stages[id].(Preflighter); ok {
			if err := c.Preflight(ctx); err != nil {
				pre = append(pre, fmt.Errorf("%s: %w", id, err))
			}
		}
	}
	if len(pre) > 0 {
		return errors.Join(pre...)
	}
	// failed marks nodes that returned an error, before their outputs are
	// closed, so a downstream Recv can tell a failure from an end.
	var failedMu sync.Mutex
	failedNodes := map[string]bool{}
	failed := func(id string) bool {
		failedMu.Lock()
		defer failedMu.Unlock()
		return failedNodes[id]
	}
	// One channel per edge; the sender's runner goroutine closes it.
	ins := map[string]map[string]<-chan Envelope{}
	outs := map[string][]chan<- Envelope{}
	for _, id := range p.Order {
		ins[id] = map[string]<-chan Envelope{}
	}
	for _, from := range p.Order {
		for _, to := range p.Graph.DownEdges(from) {
			ch := make(chan Envelope, edgeBuffer)
			outs[from] = append(outs[from], ch)
			ins[to][from] = ch
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, id := range p.Order {
		io := StageIO{In: ins[id], out: outs[id], id: id, ports: reg.kinds[p.Nodes[id].Kind].ports, failed: failed}
		s := stages[id]
		g.Go(func() (err error) {
			stopped := false // failed, or stopped by an upstream failure
			defer func() {
				if err != nil || stopped {
					failedMu.Lock()
					failedNodes[id] = true // downstream Recv: ErrUpstreamFailed
					failedMu.Unlock()
				}
				for _, ch := range io.out {
					close(ch)
				}
			}()
			rt.Events.StageStarted(id)
			err = s.Run(gctx, io)
			if errors.Is(err, ErrUpstreamFailed) {
				stopped = true
				// Not a cause: the failed upstream returns its own error to
				// the group (which cancels the rest); this stage just ends.
				rt.Events.StageFinished(id, nil)
				return nil
			}
			if err == nil {
				// Drain inputs a stage left unread so senders never block.
				for _, ch := range io.In {
					for range ch {
					}
				}
			}
			rt.Events.StageFinished(id, err)
			if err != nil {
				return &StageError{Node: id, Err: err}
			}
			return nil
		})
	}
	err := g.Wait()
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ctx.Err()
	}
	return err
}

// StageError is a stage's failure.
type StageError struct {
	Node string
	Err  error
}

func (e *StageError) Error() string { return e.Node + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }
