package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Planner is a stage that can say, without changing anything, what it
// would do: plan is a walk of the compiled DAG in topological order, each
// stage adding its checks and actions and handing what it learned to its
// downstream (PlanContext.Put / PlanInput), as it would hand messages.
type Planner interface {
	Plan(ctx context.Context, pc *PlanContext) error
}

// Describer is a stage that describes what its checkpoint section holds
// (status is a walk of the DAG too).
type Describer interface {
	Describe() []string
}

// SourceReport is what plan learned about one source.
type SourceReport struct {
	Name     string `json:"name"`
	Location string `json:"location"` // redacted URL or path
	Format   string `json:"format"`
	Size     int64  `json:"size"`
	ETag     string `json:"etag,omitempty"`
	Describe string `json:"describe,omitempty"`
	Rows     int64  `json:"rows"`
	Cached   bool   `json:"cached,omitempty"`
}

// PlanReport is the result of read-only checks against the world.
type PlanReport struct {
	Pipeline string         `json:"pipeline"`
	Sources  []SourceReport `json:"sources"`
	Problems []string       `json:"problems,omitempty"`
	Actions  []string       `json:"actions"`
	// Checkpoint says how the checkpoint is taken over when the config
	// grew (more shards, a higher limit) since it was written.
	Checkpoint string `json:"checkpoint,omitempty"`
	// LastFailure says how the last run failed and what it left loaded.
	LastFailure string `json:"last_failure,omitempty"`
	// Shards is the per-shard view of a shard set (ShardTable).
	Shards []string `json:"shards,omitempty"`
	// UpToDate is what the text says when nothing is pending ("" : the
	// snapshot is up to date; a partition takes none).
	UpToDate string `json:"-"`
}

// Pending reports whether apply would change anything.
func (r *PlanReport) Pending() bool { return len(r.Actions) > 0 }

// Text renders the report deterministically.
func (r *PlanReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Pipeline %s\n", r.Pipeline)
	if len(r.Sources) > 0 {
		b.WriteString("\nSources:\n") // none for --finalize, which reads no file
	}
	for _, s := range r.Sources {
		fmt.Fprintf(&b, "  %s: %s (%s", s.Name, s.Location, s.Format)
		if s.Size >= 0 {
			fmt.Fprintf(&b, ", %d bytes", s.Size)
		}
		if s.ETag != "" {
			fmt.Fprintf(&b, ", etag %s", s.ETag)
		}
		if s.Cached {
			b.WriteString(", cached")
		}
		b.WriteString(")\n")
		if s.Describe != "" {
			fmt.Fprintf(&b, "    %s\n", s.Describe)
		}
	}
	if len(r.Shards) > 0 {
		b.WriteString("\nShards:\n")
		for _, l := range r.Shards {
			fmt.Fprintf(&b, "%s\n", l)
		}
	}
	if r.Checkpoint != "" {
		fmt.Fprintf(&b, "\nCheckpoint: %s\n", r.Checkpoint)
	}
	if r.LastFailure != "" {
		fmt.Fprintf(&b, "\nNote: %s\n", r.LastFailure)
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nProblems:\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  ! %s\n", p)
		}
	}
	if len(r.Actions) == 0 {
		if len(r.Problems) == 0 {
			fmt.Fprintf(&b, "\nNo changes: %s.\n", cmp.Or(r.UpToDate, "the snapshot is up to date"))
		}
		return b.String()
	}
	b.WriteString("\nApply will:\n")
	for i, a := range r.Actions {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, a)
	}
	return b.String()
}

// PlanContext is what one stage sees during the plan walk.
type PlanContext struct {
	Node   *Node
	Report *PlanReport
	// Fresh is true when apply would start over (no checkpoint, or one of
	// another config): the stages' sections are then empty.
	Fresh  bool
	values map[string]any
	inputs []string
}

// Problem records a problem apply would hit.
func (pc *PlanContext) Problem(format string, args ...any) {
	pc.Report.Problems = append(pc.Report.Problems, fmt.Sprintf(format, args...))
}

// Action records a step apply would take.
func (pc *PlanContext) Action(format string, args ...any) {
	pc.Report.Actions = append(pc.Report.Actions, fmt.Sprintf(format, args...))
}

// Source adds a source's report.
func (pc *PlanContext) Source(r SourceReport) { pc.Report.Sources = append(pc.Report.Sources, r) }

// Put hands v to the downstream stages' plans.
func (pc *PlanContext) Put(v any) { pc.values[pc.Node.ID] = v }

// Inputs are the node's upstream ids, sorted.
func (pc *PlanContext) Inputs() []string { return pc.inputs }

// PlanInput is what upstream node id's plan put, if it is a T.
func PlanInput[T any](pc *PlanContext, id string) (T, bool) {
	v, ok := pc.values[id].(T)
	return v, ok
}

// PlanFile is what a download node's plan hands its decoder: the file to
// probe (the cached download, or the remote file read by Range) and what
// its format said, so the file is probed once.
type PlanFile struct {
	Report SourceReport
	File   FormatFile // nil when probing failed (the problem is recorded)
	Closer io.Closer
}

// PlanSource is what a decode node's plan hands on: the source's header.
type PlanSource struct{ Header *SourceHeader }

// PlanRows is what the batch node's plan hands on: the rows that become
// points, or -1 when they cannot be known.
type PlanRows struct{ Rows int64 }

// WalkPlan runs every stage's Plan in topological order. The runtime holds
// the checkpoint the stages' sections read (never written by plan).
func WalkPlan(ctx context.Context, p *Plan, reg *Registry, rt *Runtime, fresh bool) (*PlanReport, error) {
	if err := reg.Check(p); err != nil {
		return nil, err
	}
	rep := &PlanReport{Pipeline: p.Config.Name, Sources: []SourceReport{}, Actions: []string{}}
	values := map[string]any{}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, id := range p.Order {
		n := p.Nodes[id]
		s, err := reg.kinds[n.Kind].new(n, rt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		pl, ok := s.(Planner)
		if !ok {
			continue
		}
		pc := &PlanContext{Node: n, Report: rep, Fresh: fresh, values: values, inputs: slices.Sorted(slices.Values(p.Graph.UpEdges(id)))}
		if err := pl.Plan(ctx, pc); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if f, ok := values[id].(*PlanFile); ok && f.Closer != nil {
			closers = append(closers, f.Closer)
		}
	}
	slices.SortStableFunc(rep.Sources, func(a, b SourceReport) int { return strings.Compare(a.Name, b.Name) })
	return rep, nil
}

// WalkStatus asks every stage what its section holds, in topological
// order.
func WalkStatus(p *Plan, reg *Registry, rt *Runtime) ([]string, error) {
	if err := reg.Check(p); err != nil {
		return nil, err
	}
	var out []string
	for _, id := range p.Order {
		n := p.Nodes[id]
		s, err := reg.kinds[n.Kind].new(n, rt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if d, ok := s.(Describer); ok {
			out = append(out, d.Describe()...)
		}
	}
	return out, nil
}
