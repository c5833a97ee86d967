package fetch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/snappipe/snappipe/pipeline"
)

// retain applies snapshot.keep and snapshot.destination_keep once the new
// snapshot (current) is verified: the newest N of this collection's
// snapshots stay, the new one always among them. Failures to delete are
// logged, never fatal: the new snapshot is safe either way.
func (f *Fetch) retain(ctx context.Context, current string) {
	c := f.rt.Config
	if n := c.Snapshot.Keep; n > 0 {
		f.retainServer(ctx, current, n)
	}
	if n := c.Snapshot.DestinationKeep; n > 0 {
		if c.Snapshot.IsS3() {
			f.retainS3(ctx, current, n)
		} else {
			f.retainDir(current, n)
		}
	}
}

type dated struct {
	name string
	at   time.Time
}

// older returns the names beyond the newest keep (current counts as the
// newest whatever its timestamp).
func older(all []dated, current string, keep int) []string {
	sort.SliceStable(all, func(i, j int) bool {
		if (all[i].name == current) != (all[j].name == current) {
			return all[i].name == current
		}
		return all[i].at.After(all[j].at)
	})
	var out []string
	for i, d := range all {
		if i >= keep && d.name != current {
			out = append(out, d.name)
		}
	}
	return out
}

func (f *Fetch) retainServer(ctx context.Context, current string, keep int) {
	name := f.rt.Config.Collection.Name
	all, err := f.serverSnapshots(ctx)
	if err != nil {
		f.rt.Log.Warn("retention: list snapshots failed", "err", err)
		return
	}
	for _, old := range older(all, current, keep) {
		if err := f.rt.Qdrant.DeleteSnapshot(ctx, name, old); err != nil {
			f.rt.Log.Warn("retention: delete snapshot failed", "snapshot", old, "err", err)
			continue
		}
		f.rt.Log.Info("retention: deleted snapshot on the server", "snapshot", old)
	}
}

// serverSnapshots lists the collection's snapshots on the server.
func (f *Fetch) serverSnapshots(ctx context.Context) ([]dated, error) {
	list, err := f.rt.Qdrant.ListSnapshots(ctx, f.rt.Config.Collection.Name)
	if err != nil {
		return nil, err
	}
	var all []dated
	for _, s := range list {
		all = append(all, dated{s.GetName(), s.GetCreationTime().AsTime()})
	}
	return all, nil
}

// ofCollection reports whether a snapshot file name belongs to the
// collection (Qdrant names them COLLECTION-ID-DATE.snapshot).
func (f *Fetch) ofCollection(name string) bool {
	return strings.HasPrefix(name, f.rt.Config.Collection.Name+"-") && strings.HasSuffix(name, ".snapshot")
}

func (f *Fetch) retainDir(current string, keep int) {
	dir := f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination)
	for _, old := range older(f.dirSnapshots(), current, keep) {
		p := filepath.Join(dir, old)
		if err := os.Remove(p); err != nil {
			f.rt.Log.Warn("retention: delete failed", "file", p, "err", err)
			continue
		}
		os.Remove(ManifestPath(p))
		f.rt.Log.Info("retention: deleted snapshot file", "file", p)
	}
}

// dirSnapshots lists the collection's snapshot files in the destination
// directory.
func (f *Fetch) dirSnapshots() []dated {
	ents, err := os.ReadDir(f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination))
	if err != nil {
		return nil
	}
	var all []dated
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !e.IsDir() && f.ofCollection(e.Name()) {
			all = append(all, dated{e.Name(), fi.ModTime()})
		}
	}
	return all
}

func (f *Fetch) retainS3(ctx context.Context, current string, keep int) {
	client, err := f.s3Client(ctx)
	if err != nil {
		return
	}
	all, err := f.s3Snapshots(ctx, client)
	if err != nil {
		f.rt.Log.Warn("retention: list objects failed", "err", err)
		return
	}
	bucket, prefix := f.rt.Config.Snapshot.S3Location()
	for _, old := range older(all, current, keep) {
		for _, k := range []string{prefix + old, prefix + old + ".json"} {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
				f.rt.Log.Warn("retention: delete object failed", "key", k, "err", err)
			}
		}
		f.rt.Log.Info("retention: deleted snapshot object", "key", prefix+old)
	}
}

// s3Snapshots lists the collection's snapshot objects under the prefix,
// every page of the listing.
func (f *Fetch) s3Snapshots(ctx context.Context, client *s3.Client) ([]dated, error) {
	bucket, prefix := f.rt.Config.Snapshot.S3Location()
	p := prefix + f.rt.Config.Collection.Name + "-"
	var all []dated
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &p})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range out.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if f.ofCollection(name) {
				all = append(all, dated{name, aws.ToTime(o.LastModified)})
			}
		}
	}
	return all, nil
}

// planRetention says which snapshots apply's retention would delete once
// current (the snapshot this run keeps; "" for one not taken yet) is the
// newest.
func (f *Fetch) planRetention(ctx context.Context, pc *pipeline.PlanContext, current string) {
	c := f.rt.Config
	if current == "" {
		current = "\x00new" // sorts as the newest: it is
	}
	with := func(all []dated) []dated {
		for _, d := range all {
			if d.name == current {
				return all
			}
		}
		return append(all, dated{current, time.Now().Add(24 * time.Hour)})
	}
	say := func(old []string, where, key string, n int) {
		if len(old) == 0 {
			return
		}
		names := old
		if len(names) > 5 {
			names = append(names[:5:5], fmt.Sprintf("and %d more", len(old)-5))
		}
		pc.Action("delete %d older snapshot(s) %s (%s: %d): %s", len(old), where, key, n, strings.Join(names, ", "))
	}
	if n := c.Snapshot.Keep; n > 0 {
		if all, err := f.serverSnapshots(ctx); err == nil {
			say(older(with(all), current, n), "of "+fmt.Sprintf("%q", c.Collection.Name)+" on the server", "snapshot.keep", n)
		}
	}
	if n := c.Snapshot.DestinationKeep; n > 0 {
		var all []dated
		if c.Snapshot.IsS3() {
			client, err := f.s3Client(ctx)
			if err != nil {
				return
			}
			if all, err = f.s3Snapshots(ctx, client); err != nil {
				return
			}
		} else {
			all = f.dirSnapshots()
		}
		say(older(with(all), current, n), "at "+c.Snapshot.Destination, "snapshot.destination_keep", n)
	}
}
