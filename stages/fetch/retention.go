package fetch

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
	list, err := f.rt.Qdrant.ListSnapshots(ctx, name)
	if err != nil {
		f.rt.Log.Warn("retention: list snapshots failed", "err", err)
		return
	}
	var all []dated
	for _, s := range list {
		all = append(all, dated{s.GetName(), s.GetCreationTime().AsTime()})
	}
	for _, old := range older(all, current, keep) {
		if err := f.rt.Qdrant.DeleteSnapshot(ctx, name, old); err != nil {
			f.rt.Log.Warn("retention: delete snapshot failed", "snapshot", old, "err", err)
			continue
		}
		f.rt.Log.Info("retention: deleted snapshot on the server", "snapshot", old)
	}
}

// ofCollection reports whether a snapshot file name belongs to the
// collection (Qdrant names them COLLECTION-ID-DATE.snapshot).
func (f *Fetch) ofCollection(name string) bool {
	return strings.HasPrefix(name, f.rt.Config.Collection.Name+"-") && strings.HasSuffix(name, ".snapshot")
}

func (f *Fetch) retainDir(current string, keep int) {
	dir := f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var all []dated
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !e.IsDir() && f.ofCollection(e.Name()) {
			all = append(all, dated{e.Name(), fi.ModTime()})
		}
	}
	for _, old := range older(all, current, keep) {
		p := filepath.Join(dir, old)
		if err := os.Remove(p); err != nil {
			f.rt.Log.Warn("retention: delete failed", "file", p, "err", err)
			continue
		}
		os.Remove(ManifestPath(p))
		f.rt.Log.Info("retention: deleted snapshot file", "file", p)
	}
}

func (f *Fetch) retainS3(ctx context.Context, current string, keep int) {
	client, err := f.s3Client(ctx)
	if err != nil {
		return
	}
	bucket, prefix := f.rt.Config.Snapshot.S3Location()
	p := prefix + f.rt.Config.Collection.Name + "-"
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &p})
	if err != nil {
		f.rt.Log.Warn("retention: list objects failed", "err", err)
		return
	}
	var all []dated
	for _, o := range out.Contents {
		name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
		if f.ofCollection(name) {
			all = append(all, dated{name, aws.ToTime(o.LastModified)})
		}
	}
	for _, old := range older(all, current, keep) {
		for _, k := range []string{prefix + old, prefix + old + ".json"} {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
				f.rt.Log.Warn("retention: delete object failed", "key", k, "err", err)
			}
		}
		f.rt.Log.Info("retention: deleted snapshot object", "key", prefix+old)
	}
}
