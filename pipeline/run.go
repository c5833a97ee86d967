package pipeline

import (
	"context"
	"errors"
	"fmt"

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
	stages := map[string]Stage{}
	for _, id := range p.Order {
		n := p.Nodes[id]
		f, ok := reg.factories[n.Kind]
		if !ok {
			return fmt.Errorf("%s: no stage registered for kind %q", id, n.Kind)
		}
		s, err := f(n, rt)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		stages[id] = s
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
		io := StageIO{In: ins[id], out: outs[id], id: id}
		s := stages[id]
		g.Go(func() (err error) {
			defer func() {
				for _, ch := range io.out {
					close(ch)
				}
			}()
			rt.Events.StageStarted(id)
			err = s.Run(gctx, io)
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
