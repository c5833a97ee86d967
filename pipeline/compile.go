package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"github.com/snappipe/snappipe/pipeline/config"
)

// Stage kinds, in pipeline order.
const (
	KindDownload = "download"
	KindDecode   = "decode"
	KindBatch    = "batch"
	KindUpsert   = "upsert"
	KindSnapshot = "snapshot"
	KindFetch    = "fetch"
	// KindVerify checks, for apply --finalize, that the collection holds
	// every planned row (the partitions loaded it) before the snapshot.
	KindVerify = "verify"
	// KindRestore restores the fetched snapshot into one restore: target.
	KindRestore = "restore"
	// KindClusterSnapshot snapshots every shard on its peer and writes a
	// cluster manifest (snapshot.scope: cluster); it replaces snapshot and
	// fetch.
	KindClusterSnapshot = "cluster-snapshot"
)

// Mode is what a run of apply does.
type Mode int

const (
	// ModeFull loads, snapshots and fetches (a plain apply).
	ModeFull Mode = iota
	// ModePartition loads one partition's shards, without a snapshot.
	ModePartition
	// ModeFinalize loads nothing: verify, snapshot, fetch.
	ModeFinalize
)

// Node is one vertex of the plan.
type Node struct {
	ID     string   // e.g. "decode.image"
	Kind   string   // one of the Kind constants
	Source string   // for download and decode nodes
	Target int      // for restore nodes: the index in restore:
	Reads  []string // upstream node ids
}

// Plan is a compiled config: nodes in a checked DAG.
type Plan struct {
	Config *config.Config
	Nodes  map[string]*Node
	Graph  *Graph
	Order  []string // topological
	Mode   Mode
}

// Compile turns a validated config into a plan in named passes: declare
// nodes, wire edges from what each reads, check for cycles.
func Compile(c *config.Config, mode ...Mode) (*Plan, error) {
	m := ModeFull
	if len(mode) > 0 {
		m = mode[0]
	}
	p := &Plan{Config: c, Nodes: map[string]*Node{}, Graph: NewGraph(), Mode: m}
	add := func(n *Node) { p.Nodes[n.ID] = n }
	restoresAfter := func(from string) {
		for i := range c.Restore {
			add(&Node{ID: fmt.Sprintf("%s.%d", KindRestore, i), Kind: KindRestore, Target: i, Reads: []string{from}})
		}
	}
	restores := func() { restoresAfter(KindFetch) }
	cluster := c.Snapshot.Scope == "cluster"
	if m == ModeFinalize {
		add(&Node{ID: KindVerify, Kind: KindVerify})
		if cluster {
			add(&Node{ID: KindClusterSnapshot, Kind: KindClusterSnapshot, Reads: []string{KindVerify}})
			restoresAfter(KindClusterSnapshot)
			return p.wire()
		}
		add(&Node{ID: KindSnapshot, Kind: KindSnapshot, Reads: []string{KindVerify}})
		add(&Node{ID: KindFetch, Kind: KindFetch, Reads: []string{KindSnapshot}})
		restores()
		return p.wire()
	}
	var decodes []string
	for _, src := range config.UsedSources(c) {
		s := c.Sources[src]
		if s == nil {
			return nil, fmt.Errorf("source %q is not defined", src)
		}
		dec := &Node{ID: KindDecode + "." + src, Kind: KindDecode, Source: src}
		if s.IsRemote() {
			dl := &Node{ID: KindDownload + "." + src, Kind: KindDownload, Source: src}
			add(dl)
			dec.Reads = []string{dl.ID}
		}
		add(dec)
		decodes = append(decodes, dec.ID)
	}
	if len(decodes) == 0 {
		return nil, fmt.Errorf("no source feeds any point: map at least one vector under points.vectors")
	}
	add(&Node{ID: KindBatch, Kind: KindBatch, Reads: decodes})
	add(&Node{ID: KindUpsert, Kind: KindUpsert, Reads: []string{KindBatch}})
	if m == ModeFull && cluster {
		add(&Node{ID: KindClusterSnapshot, Kind: KindClusterSnapshot, Reads: []string{KindUpsert}})
		restoresAfter(KindClusterSnapshot)
	} else if m == ModeFull {
		add(&Node{ID: KindSnapshot, Kind: KindSnapshot, Reads: []string{KindUpsert}})
		add(&Node{ID: KindFetch, Kind: KindFetch, Reads: []string{KindSnapshot}})
		restores()
	}
	return p.wire()
}

// wire connects the declared nodes by what they read and orders them.
func (p *Plan) wire() (*Plan, error) {
	for _, id := range SortedKeys(p.Nodes) {
		n := p.Nodes[id]
		p.Graph.Add(id)
		for _, r := range n.Reads {
			if _, ok := p.Nodes[r]; !ok {
				return nil, fmt.Errorf("node %s reads unknown node %s", id, r)
			}
			p.Graph.Connect(r, id)
		}
	}
	order, err := p.Graph.TopologicalOrder()
	if err != nil {
		return nil, err
	}
	p.Order = order
	return p, nil
}

// Has reports whether the plan has a node of kind.
func (p *Plan) Has(kind string) bool {
	for _, n := range p.Nodes {
		if n.Kind == kind {
			return true
		}
	}
	return false
}

// String renders the DAG, one node per line in topological order.
func (p *Plan) String() string {
	var b strings.Builder
	for _, id := range p.Order {
		n := p.Nodes[id]
		reads := slices.Clone(n.Reads)
		slices.Sort(reads)
		if len(reads) == 0 {
			fmt.Fprintf(&b, "%s\n", id)
		} else {
			fmt.Fprintf(&b, "%s <- %s\n", id, strings.Join(reads, ", "))
		}
	}
	return b.String()
}
