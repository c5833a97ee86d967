package pipeline

import (
	"fmt"
	"strings"

	"github.com/snappipe/snappipe/internal/httpget"
)

// NodeLabel describes a node for a picture of the plan: its kind and what
// the config says it works on (shard counts, limits, batch sizes,
// destinations). It reads no file and no server.
func (p *Plan) NodeLabel(id string) string {
	n := p.Nodes[id]
	c := p.Config
	shards := func(src string) string {
		s := c.Sources[src]
		if s == nil || !s.IsShardSet() {
			return ""
		}
		if s.HasRange() {
			if files, err := s.Shards(c.Dir); err == nil {
				return fmt.Sprintf("\\n%d shards", len(files))
			}
		}
		return "\\nshard set (glob)"
	}
	switch n.Kind {
	case KindDownload:
		s := c.Sources[n.Source]
		return fmt.Sprintf("download %s\\n%s%s", n.Source, httpget.Redact(s.URL), shards(n.Source))
	case KindDecode:
		s := c.Sources[n.Source]
		l := fmt.Sprintf("decode %s\\n%s", n.Source, s.Format)
		return l + shards(n.Source)
	case KindBatch:
		l := fmt.Sprintf("batch\\n%d rows a batch", c.Upload.BatchSize)
		if lim := c.Points.LimitOr(); lim >= 0 {
			l += fmt.Sprintf("\\nlimit %d", lim)
		}
		return l
	case KindUpsert:
		return fmt.Sprintf("upsert\\ncollection %s\\n%d in parallel", c.Collection.Name, c.Upload.Parallel)
	case KindSnapshot:
		return "snapshot\\n(collection)"
	case KindFetch:
		return "fetch\\n" + c.Snapshot.Destination
	case KindClusterSnapshot:
		return fmt.Sprintf("cluster snapshot\\n%d peers\\n%s", len(c.Qdrant.Peers), c.Snapshot.Destination)
	case KindVerify:
		return "verify\\n(exact count)"
	case KindRestore:
		r := c.Restore[n.Target]
		return fmt.Sprintf("restore\\n%s\\n%s", httpget.Redact(r.URL), r.Collection)
	}
	return n.Kind
}

// DOT renders the plan as a Graphviz digraph.
func (p *Plan) DOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n", p.Config.Name)
	for _, id := range p.Order {
		fmt.Fprintf(&b, "  %q [label=\"%s\"];\n", id, strings.ReplaceAll(p.NodeLabel(id), `"`, `\"`))
	}
	for _, id := range p.Order {
		for _, to := range p.Graph.DownEdges(id) {
			fmt.Fprintf(&b, "  %q -> %q;\n", id, to)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders the plan as a Mermaid flowchart.
func (p *Plan) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	ids := map[string]string{}
	for i, id := range p.Order {
		ids[id] = fmt.Sprintf("n%d", i)
		label := strings.NewReplacer(`\n`, "<br/>", `"`, "#quot;").Replace(p.NodeLabel(id))
		fmt.Fprintf(&b, "  %s[\"%s\"]\n", ids[id], label)
	}
	for _, id := range p.Order {
		for _, to := range p.Graph.DownEdges(id) {
			fmt.Fprintf(&b, "  %s --> %s\n", ids[id], ids[to])
		}
	}
	return b.String()
}
