package fetch

import (
	"context"
	"fmt"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/pipeline"
)

// Plan says whether apply would download the snapshot: not when the
// recorded file is there with its recorded SHA-256.
func (f *Fetch) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	st := f.state.Get()
	if st.Done {
		if sum, _, err := httpget.HashFile(st.Path); err == nil && sum == st.SHA256 {
			return nil
		}
	}
	pc.Action("download the snapshot over REST, verify its SHA-256, write it to %s", f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination))
	return nil
}

// Describe says what the checkpoint holds for the snapshot file.
func (f *Fetch) Describe() []string {
	st := f.state.Get()
	if st.Done {
		return []string{fmt.Sprintf("  fetch      done (%s, sha256 %s)", st.Path, st.SHA256)}
	}
	return []string{"  fetch      pending"}
}
