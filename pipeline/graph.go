package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// Graph is a small directed graph of string-identified vertices. It knows
// nothing of stages: it orders vertices and finds cycles.
type Graph struct {
	vertices []string
	edges    map[string][]string // from -> to
}

// NewGraph returns an empty graph.
func NewGraph() *Graph { return &Graph{edges: map[string][]string{}} }

// Add adds a vertex; adding one twice is a no-op.
func (g *Graph) Add(v string) {
	if !slices.Contains(g.vertices, v) {
		g.vertices = append(g.vertices, v)
	}
}

// Connect adds the edge from -> to, adding missing vertices.
func (g *Graph) Connect(from, to string) {
	g.Add(from)
	g.Add(to)
	if !slices.Contains(g.edges[from], to) {
		g.edges[from] = append(g.edges[from], to)
	}
}

// Vertices returns the vertices in insertion order.
func (g *Graph) Vertices() []string { return slices.Clone(g.vertices) }

// DownEdges returns v's successors, sorted.
func (g *Graph) DownEdges(v string) []string {
	out := slices.Clone(g.edges[v])
	slices.Sort(out)
	return out
}

// UpEdges returns v's predecessors, sorted.
func (g *Graph) UpEdges(v string) []string {
	var out []string
	for from, tos := range g.edges {
		if slices.Contains(tos, v) {
			out = append(out, from)
		}
	}
	slices.Sort(out)
	return out
}

// TopologicalOrder returns the vertices so that every edge goes forward,
// ties broken by name (deterministic). It fails on a cycle, naming it.
func (g *Graph) TopologicalOrder() ([]string, error) {
	indeg := map[string]int{}
	for _, v := range g.vertices {
		indeg[v] += 0
		for _, to := range g.edges[v] {
			indeg[to]++
		}
	}
	var ready []string
	for _, v := range g.vertices {
		if indeg[v] == 0 {
			ready = append(ready, v)
		}
	}
	var out []string
	for len(ready) > 0 {
		slices.Sort(ready)
		v := ready[0]
		ready = ready[1:]
		out = append(out, v)
		for _, to := range g.DownEdges(v) {
			indeg[to]--
			if indeg[to] == 0 {
				ready = append(ready, to)
			}
		}
	}
	if len(out) != len(g.vertices) {
		return nil, fmt.Errorf("dependency cycle: %s", strings.Join(g.findCycle(), " -> "))
	}
	return out, nil
}

func (g *Graph) findCycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(v string) bool
	visit = func(v string) bool {
		color[v] = grey
		stack = append(stack, v)
		for _, to := range g.DownEdges(v) {
			switch color[to] {
			case grey:
				i := slices.Index(stack, to)
				cycle = append(slices.Clone(stack[i:]), to)
				return true
			case white:
				if visit(to) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[v] = black
		return false
	}
	vs := slices.Clone(g.vertices)
	slices.Sort(vs)
	for _, v := range vs {
		if color[v] == white && visit(v) {
			return cycle
		}
	}
	return nil
}
