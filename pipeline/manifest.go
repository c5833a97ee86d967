package pipeline

import (
	"encoding/json"
	"os"
	"time"

	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/pipeline/config"
)

// ManifestVersion is the version of the manifest's schema.
const ManifestVersion = 1

// Manifest is the record written beside every verified snapshot
// (<snapshot name>.json): what the file is and what it was built from, so
// a snapshot is reproducible and auditable. Secrets never appear in it
// (source URLs are stored as config.RedactURL gives them).
type Manifest struct {
	ManifestVersion int    `json:"manifest_version"`
	Snapshot        string `json:"snapshot"`
	Size            int64  `json:"size"`
	SHA256          string `json:"sha256"`
	CreatedAt       string `json:"created_at"` // RFC 3339, UTC
	Collection      struct {
		Name   string                  `json:"name"`
		Config config.CollectionConfig `json:"config"`
	} `json:"collection"`
	Points   int64            `json:"points"`
	Pipeline ManifestPipeline `json:"pipeline"`
	Sources  []ManifestSource `json:"sources"`
}

// ManifestPipeline names the pipeline and config that made the snapshot.
type ManifestPipeline struct {
	Name       string `json:"name"`
	ConfigHash string `json:"config_hash"`
	Snappipe   string `json:"snappipe_version"`
	Partitions int    `json:"partitions,omitempty"`
}

// ManifestSource is one source file that fed points.
type ManifestSource struct {
	Source   string `json:"source"`
	Shard    *int   `json:"shard,omitempty"`
	URL      string `json:"url,omitempty"`  // redacted
	Path     string `json:"path,omitempty"` // local files
	Size     int64  `json:"size"`
	ETag     string `json:"etag,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Modified string `json:"modified,omitempty"` // local files: modification time
	RowsUsed int64  `json:"rows_used"`
}

// BuildManifest describes a verified snapshot from the run's config,
// layout and checkpoint.
func (rt *Runtime) BuildManifest(name string, size int64, sum string) *Manifest {
	c := rt.Config
	st := rt.state.Snapshot()
	m := &Manifest{ManifestVersion: ManifestVersion, Snapshot: name, Size: size, SHA256: sum, CreatedAt: time.Now().UTC().Format(time.RFC3339)}
	m.Collection.Name = c.Collection.Name
	m.Collection.Config = c.Collection
	m.Pipeline = ManifestPipeline{Name: c.Name, ConfigHash: st.ConfigHash, Snappipe: rt.Version, Partitions: rt.Partitions}
	l := rt.LayoutOf()
	m.Points = rt.LoadedPoints()
	add := func(src string, shard *int, f config.ShardFile, key string, rows int64) {
		ms := ManifestSource{Source: src, Shard: shard, RowsUsed: rows, Size: -1}
		if f.URL != "" {
			ms.URL = config.RedactURL(f.URL)
			if ds := st.Downloads[key]; ds != nil {
				ms.Size, ms.ETag, ms.SHA256 = ds.Size, ds.ETag, ds.SHA256
			}
			if r := st.ShardRows[key]; r != nil && ms.Size < 0 {
				ms.Size, ms.ETag = r.Size, r.ETag
			}
		} else {
			ms.Path = f.Path
			if fi, err := os.Stat(f.Path); err == nil {
				ms.Size, ms.Modified = fi.Size(), fi.ModTime().UTC().Format(time.RFC3339)
			}
		}
		if s := c.Sources[src]; s != nil && s.SHA256 != "" {
			ms.SHA256 = s.SHA256
		}
		m.Sources = append(m.Sources, ms)
	}
	if l.Sharded {
		for _, span := range l.Shards {
			for _, src := range SortedKeys(span.Files) {
				k := span.Index
				add(src, &k, span.Files[src], ShardKey(src, k), span.Rows)
			}
		}
	} else {
		for _, src := range UsedSources(c) {
			s := c.Sources[src]
			f := config.ShardFile{URL: s.URL}
			if s.URL == "" {
				f.Path = c.Resolve(s.Path)
			}
			add(src, nil, f, src, m.Points)
		}
	}
	return m
}

// LoadedPoints is how many points the pipeline's collection holds once
// loaded: the rows of a shard set's layout, else the rows upserted.
func (rt *Runtime) LoadedPoints() int64 {
	if l := rt.LayoutOf(); l.Sharded {
		return l.Rows
	}
	return rt.state.Snapshot().Upsert.Rows
}

// WriteManifest writes m as indented JSON to path, atomically.
func WriteManifest(path string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// ClusterManifest describes a cluster snapshot: one file per shard, each
// taken on the peer that held it, plus the single manifest's provenance
// (Snapshot names the manifest file, Size the shard files' total).
type ClusterManifest struct {
	Manifest
	Kind       string         `json:"kind"` // "cluster"
	ShardCount int            `json:"shard_count"`
	Shards     []ClusterShard `json:"shards"`
}

// ClusterShard is one shard's snapshot file.
type ClusterShard struct {
	ShardID uint32 `json:"shard_id"`
	Peer    string `json:"peer"` // REST URL of the source peer (redacted)
	File    string `json:"file"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Points  uint64 `json:"points"`
}
