package restore

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/qrestore"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/upsert"
)

// ClusterFiles says where a cluster manifest's shard files are: a local
// directory, or an S3 bucket and prefix (then each target peer recovers
// its shards from presigned URLs).
type ClusterFiles struct {
	Dir    string
	S3     *s3.Client
	Bucket string
	Prefix string
}

// RestoreCluster restores a cluster manifest onto a cluster: the collection
// is created with the manifest's config and shard count (a rerun finds it
// and goes on), each shard's file goes (with its checksum) to the target
// peer holding that shard, then every shard's points and the total are
// checked. The target may have another number of peers than the source.
// peers are the target's REST URLs (default: t.URL alone); the collection
// is created over gRPC on t.URL's host at grpcPort.
func RestoreCluster(ctx context.Context, t qrestore.Target, m *pipeline.ClusterManifest, files ClusterFiles, peers []string, grpcPort int) (int64, error) {
	if len(peers) == 0 {
		peers = []string{t.URL}
	}
	u, err := url.Parse(t.URL)
	if err != nil || u.Hostname() == "" {
		return 0, fmt.Errorf("target URL %q: %v", httpget.Redact(t.URL), err)
	}
	client, err := qdrant.NewClient(&qdrant.Config{Host: u.Hostname(), Port: grpcPort, APIKey: t.APIKey, UseTLS: u.Scheme == "https", SkipCompatibilityCheck: true})
	if err != nil {
		return 0, err
	}
	defer client.Close()
	coll := m.Collection.Config
	coll.Name = t.Collection
	n := uint32(m.ShardCount)
	coll.ShardNumber = &n
	if err := client.CreateCollection(ctx, upsert.CreateRequest(&config.Config{Collection: coll})); err != nil {
		// A rerun after an interrupted restore finds the collection it
		// created: every shard is sent again (a shard upload replaces the
		// shard's points), so the result is exact either way.
		exists, eerr := client.CollectionExists(ctx, t.Collection)
		if eerr != nil || !exists {
			return 0, fmt.Errorf("create collection %q on %s: %w", t.Collection, httpget.Redact(t.URL), err)
		}
		info, ierr := client.GetCollectionInfo(ctx, t.Collection)
		if ierr != nil || info.GetConfig().GetParams().GetShardNumber() != n {
			return 0, fmt.Errorf("collection %q exists on %s with another shard count: restore into a new collection", t.Collection, httpget.Redact(t.URL))
		}
	}
	holder := map[uint32]qrestore.Target{}
	for _, p := range peers {
		pt := t
		pt.URL = p
		local, err := pt.LocalShards(ctx)
		if err != nil {
			return 0, err
		}
		for id := range local {
			holder[id] = pt
		}
	}
	var total uint64
	for _, s := range m.Shards {
		pt, ok := holder[s.ShardID]
		if !ok {
			return 0, fmt.Errorf("shard %d is on no target peer given: name every node of the target cluster", s.ShardID)
		}
		if files.S3 != nil {
			ps, perr := s3.NewPresignClient(files.S3).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &files.Bucket, Key: aws.String(files.Prefix + s.File)}, s3.WithPresignExpires(time.Hour))
			if perr != nil {
				return 0, perr
			}
			if err := pt.RecoverShard(ctx, s.ShardID, ps.URL, s.SHA256); err != nil {
				return 0, fmt.Errorf("shard %d to %s: %w", s.ShardID, httpget.Redact(pt.URL), err)
			}
		} else if err := pt.UploadShard(ctx, s.ShardID, filepath.Join(files.Dir, s.File), s.File, s.SHA256); err != nil {
			return 0, fmt.Errorf("shard %d to %s: %w", s.ShardID, httpget.Redact(pt.URL), err)
		}
		total += s.Points
	}
	for id, pt := range holder {
		local, err := pt.LocalShards(ctx)
		if err != nil {
			return 0, err
		}
		for _, s := range m.Shards {
			if s.ShardID == id && local[id] != s.Points {
				return 0, fmt.Errorf("shard %d on %s holds %d points, the manifest %d", id, httpget.Redact(pt.URL), local[id], s.Points)
			}
		}
	}
	cnt, err := t.Count(ctx)
	if err != nil {
		return 0, err
	}
	if uint64(cnt) != total {
		return 0, fmt.Errorf("collection %q holds %d points, the manifest %d", t.Collection, cnt, total)
	}
	return cnt, nil
}
