// Package all lists every stage kind. Registration is explicit: this is the
// one place a new stage is added.
package all

import (
	_ "github.com/snappipe/snappipe/formats/all" // the source formats
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/batch"
	"github.com/snappipe/snappipe/stages/clustersnap"
	"github.com/snappipe/snappipe/stages/decode"
	"github.com/snappipe/snappipe/stages/download"
	"github.com/snappipe/snappipe/stages/fetch"
	"github.com/snappipe/snappipe/stages/restore"
	"github.com/snappipe/snappipe/stages/snapshot"
	"github.com/snappipe/snappipe/stages/upsert"
	"github.com/snappipe/snappipe/stages/verify"
)

// Registry returns a registry of every stage kind.
func Registry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	r.Register(download.Kind, download.Ports, download.New)
	r.Register(decode.Kind, decode.Ports, decode.New)
	r.Register(batch.Kind, batch.Ports, batch.New)
	r.Register(upsert.Kind, upsert.Ports, upsert.New)
	r.Register(snapshot.Kind, snapshot.Ports, snapshot.New)
	r.Register(fetch.Kind, fetch.Ports, fetch.New)
	r.Register(verify.Kind, verify.Ports, verify.New)
	r.Register(restore.Kind, restore.Ports, restore.New)
	r.Register(clustersnap.Kind, clustersnap.Ports, clustersnap.New)
	return r
}
