package snapshot

import (
	"context"
	"fmt"

	"github.com/snappipe/snappipe/pipeline"
)

// Plan says whether apply would create a snapshot.
func (s *Snapshot) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	if s.state.Get().Name == "" {
		pc.Action("create a snapshot of %q on the server", s.rt.Config.Collection.Name)
	}
	return nil
}

// Describe says what the checkpoint holds for the snapshot.
func (s *Snapshot) Describe() []string {
	st := s.state.Get()
	switch {
	case st.Name != "":
		return []string{fmt.Sprintf("  snapshot   done (%s, %d bytes, sha256 %s)", st.Name, st.Size, st.Checksum)}
	case st.RequestedAt != nil:
		return []string{fmt.Sprintf("  snapshot   requested at %s, name not yet known", st.RequestedAt.Format("2006-01-02 15:04:05Z"))}
	}
	return []string{"  snapshot   pending"}
}
