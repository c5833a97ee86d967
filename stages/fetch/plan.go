package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/pipeline/config"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/pipeline"
)

// Plan says whether apply would download the snapshot: not when the
// recorded file is there with its recorded SHA-256.
func (f *Fetch) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	err := f.planFetch(ctx, pc)
	// The snapshot retention keeps is the one fetched (a new one when the
	// fetch is not done: apply takes it first).
	current := ""
	if st := f.state.Get(); st.Done && !pc.Fresh {
		current = path.Base(st.Path)
	}
	f.planRetention(ctx, pc, current)
	return err
}

func (f *Fetch) planFetch(ctx context.Context, pc *pipeline.PlanContext) error {
	st := f.state.Get()
	// Done only where the config puts it now: a changed destination gets
	// the snapshot fetched there (as apply does).
	here := st.Done && st.Path == f.target(path.Base(st.Path))
	if here && f.rt.Config.Snapshot.IsS3() {
		return nil
	}
	if here {
		if sum, _, err := httpget.HashFile(st.Path); err == nil && sum == st.SHA256 {
			return nil
		}
	}
	if f.rt.Config.Snapshot.IsS3() {
		if err := f.checkBucket(ctx); err != nil {
			pc.Problem("snapshot.destination: %v", err)
		}
		if gone := st.LeftFor(f.target(path.Base(st.Path))); len(gone) > 0 {
			pc.Action("abort %d multipart upload(s) of snapshots the checkpoint gave up (%s, …)", len(gone), gone[0].Path)
		}
		pc.Action("stream the snapshot from the server into a multipart upload to %s, verify its SHA-256, then complete it and write the manifest", f.rt.Config.Snapshot.Destination)
		return nil
	}
	if err := CheckDestination(f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination), false); err != nil {
		pc.Problem("snapshot.destination: %v", err)
	}
	if gone := st.Abandon(); len(gone) > 0 {
		pc.Action("abort %d multipart upload(s) to S3 that the checkpoint started and no longer needs (%s, …)", len(gone), gone[0].Path)
	}
	pc.Action("download the snapshot over REST, verify its SHA-256, write it to %s", f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination))
	return nil
}

// Preflight checks, before the load starts, that the snapshot can be
// written where it must land (creating the directory, as apply would).
func (f *Fetch) Preflight(ctx context.Context) error {
	if st := f.state.Get(); st.Done && st.Path == f.target(path.Base(st.Path)) {
		return nil
	}
	if f.rt.Config.Snapshot.IsS3() {
		if err := f.checkBucket(ctx); err != nil {
			return fmt.Errorf("snapshot.destination: %w", err)
		}
		return nil
	}
	if err := CheckDestination(f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination), true); err != nil {
		return fmt.Errorf("snapshot.destination: %w", err)
	}
	return nil
}

// CheckDestination says whether dir can receive the snapshot: a writable
// directory, or one that can be created under a writable parent. With
// create it makes the directory and writes (and removes) a probe file;
// without (plan), it changes nothing and asks the OS for write access.
func CheckDestination(dir string, create bool) error {
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", dir, unwrapPath(err))
		}
		probe, err := os.CreateTemp(dir, atomicfile.TempPrefix+"probe-*")
		if err != nil {
			return fmt.Errorf("cannot write into %s: %w", dir, unwrapPath(err))
		}
		probe.Close()
		return os.Remove(probe.Name())
	}
	d := dir
	for {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			if err := syscall.Access(d, 0x2 /* W_OK */); err != nil {
				return fmt.Errorf("%s is not writable: %w", d, err)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot use %s: %w", d, unwrapPath(err))
		}
		parent := filepath.Dir(d)
		if parent == d {
			return fmt.Errorf("no existing parent of %s", dir)
		}
		d = parent
	}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var _ pipeline.Preflighter = (*Fetch)(nil)

// Describe says what the checkpoint holds for the snapshot file.
func (f *Fetch) Describe() []string {
	st := f.state.Get()
	if st.Done {
		moved := ""
		if st.Path != f.target(path.Base(st.Path)) {
			moved = "; snapshot.destination changed since: apply writes it there"
		}
		return []string{fmt.Sprintf("  fetch      done (%s, sha256 %s%s)", st.Path, st.SHA256, moved)}
	}
	return []string{"  fetch      pending"}
}

// target is where the config puts a snapshot named name.
func (f *Fetch) target(name string) string { return Target(f.rt.Config, name) }

// Target is where c puts a file named name at the snapshot destination:
// in the destination directory, or s3://BUCKET/PREFIXname.
func Target(c *config.Config, name string) string {
	if c.Snapshot.IsS3() {
		bucket, prefix := c.Snapshot.S3Location()
		return "s3://" + bucket + "/" + prefix + name
	}
	return filepath.Join(c.Resolve(c.Snapshot.Destination), name)
}
