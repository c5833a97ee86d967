package config

import (
	"path/filepath"
	"strings"
	"time"
)

// Config is a pipeline file. Every YAML key is spelled once, in a yaml tag;
// the doc tag feeds the JSON Schema and the README's config reference.
type Config struct {
	Version    int                `yaml:"version" snappipe:"required" doc:"Config format version. Must be 1."`
	Name       string             `yaml:"name" snappipe:"required" doc:"Pipeline name: keys the checkpoint (state file) and the download cache. Letters, digits, '.', '_' and '-'."`
	Qdrant     QdrantConfig       `yaml:"qdrant" doc:"Where the Qdrant server is."`
	Collection CollectionConfig   `yaml:"collection" snappipe:"required" doc:"The collection to create and fill."`
	Sources    map[string]*Source `yaml:"sources" snappipe:"required" doc:"Input files by name (a name is letters, digits, '.', '_' and '-', starting with a letter or digit). Rows are aligned across sources: row i of every source is point i."`
	Points     PointsConfig       `yaml:"points" snappipe:"required" doc:"How rows become points."`
	Upload     UploadConfig       `yaml:"upload" doc:"Upsert batching, parallelism and retries."`
	Download   DownloadConfig     `yaml:"download" doc:"Downloads of url: sources and of the snapshot file."`
	Snapshot   SnapshotConfig     `yaml:"snapshot" snappipe:"required" doc:"Where the snapshot file lands."`
	Restore    []*RestoreTarget   `yaml:"restore" doc:"Qdrant servers the verified snapshot is restored into after it lands (each checked by an exact point count)."`

	// File is the config's path as given; Dir is the directory relative
	// paths resolve against.
	File string `yaml:"-"`
	Dir  string `yaml:"-"`
	// Warnings are problems that do not stop the load (e.g. a source no
	// point uses); the commands print them.
	Warnings Diagnostics `yaml:"-"`
	// Unset are the key paths whose ${VAR} had no value (LoadOptions.
	// AllowUnset): their values are empty and were not checked.
	Unset []string `yaml:"-"`
	// positions of every decoded key path, for diagnostics after decoding.
	pos map[string]Pos
}

// Pos is a position in a config file (1-based).
type Pos struct{ Line, Column int }

// QdrantConfig locates the server.
type QdrantConfig struct {
	URL      string   `yaml:"url" doc:"REST base URL (snapshot download). gRPC uses the same host on grpc_port; TLS when the scheme is https. QDRANT_URL overrides it." default:"http://localhost:6333"`
	GRPCPort int      `yaml:"grpc_port" doc:"gRPC port on the url's host." default:"6334"`
	APIKey   Secret   `yaml:"api_key" doc:"API key, sent as the api-key header/metadata. QDRANT_API_KEY overrides it. Never printed."`
	Timeout  Duration `yaml:"timeout" doc:"Deadline of one gRPC call other than snapshot creation (Go duration, e.g. 30s)." default:"60s"`
	Peers    []string `yaml:"peers" doc:"REST URLs of every node of a Qdrant cluster (snapshot.scope: cluster): each shard is snapshotted on the node that holds it. Same API key as url. A {A..B} range expands to many (Qdrant Cloud: https://node-{0..2}-ID.cloud.qdrant.io:6333)."`
}

// CollectionConfig is the collection's settings.
type CollectionConfig struct {
	Name                   string                         `yaml:"name" snappipe:"required" doc:"Collection name (1-255 characters, no '/')."`
	OnExists               string                         `yaml:"on_exists" enum:"recreate,reuse,fail" default:"fail" doc:"What to do when the collection exists on a fresh run: recreate it (drops its points; needs -y or a TTY confirmation when it has points), reuse it (config must match), or fail."`
	Vectors                map[string]*VectorConfig       `yaml:"vectors" snappipe:"required" doc:"Named vectors (names: letters, digits, '.', '_' and '-', starting with a letter or digit)."`
	ShardNumber            *uint32                        `yaml:"shard_number" doc:"Number of shards (>= 1)."`
	ReplicationFactor      *uint32                        `yaml:"replication_factor" doc:"Replicas per shard (>= 1)."`
	WriteConsistencyFactor *uint32                        `yaml:"write_consistency_factor" doc:"Replicas that must acknowledge a write (>= 1)."`
	WAL                    *WALConfig                     `yaml:"wal" doc:"Write-ahead log settings."`
	Metadata               map[string]string              `yaml:"metadata" doc:"Free-form key -> text metadata kept with the collection (and in its snapshots)."`
	OnDiskPayload          *bool                          `yaml:"on_disk_payload" doc:"Keep payload on disk."`
	HNSW                   *HNSWConfig                    `yaml:"hnsw" doc:"HNSW index settings."`
	Optimizers             *OptimizersConfig              `yaml:"optimizers" doc:"Optimizer settings."`
	Quantization           *QuantizationConfig            `yaml:"quantization" doc:"Quantization of every vector (one of scalar, product, binary); a vector's own quantization wins."`
	SparseVectors          map[string]*SparseVectorConfig `yaml:"sparse_vectors" doc:"Named sparse vectors (SPLADE, BM25-style): each point holds (index, value) pairs. Each is fed by points.vectors.NAME: {source, indices, values}. Names are shared with collection.vectors: a name is one or the other."`
	StrictMode             *StrictModeConfig              `yaml:"strict_mode" doc:"Qdrant's strict mode: limits the server enforces on every request to the collection (and keeps in its snapshots)."`
	PayloadIndexes         map[string]string              `yaml:"payload_indexes" enum:"keyword,integer,float,geo,text,bool,datetime,uuid" doc:"Payload field -> index type, created before the upload."`
}

// VectorConfig is one named vector's parameters.
type VectorConfig struct {
	Size     int    `yaml:"size" snappipe:"required" doc:"Dimension (1-65536). Checked against every source before the first upsert."`
	Distance string `yaml:"distance" snappipe:"required" enum:"Cosine,Euclid,Dot,Manhattan" doc:"Distance function."`
	Datatype string `yaml:"datatype" enum:"float32,float16,uint8" default:"float32" doc:"Storage datatype on the server."`
	OnDisk   *bool  `yaml:"on_disk" doc:"Store vectors on disk."`
	// Quantization of this vector (overrides collection.quantization).
	Quantization *QuantizationConfig `yaml:"quantization" json:",omitempty" doc:"Quantization of this vector, overriding collection.quantization."`
	Multivector  *MultivectorConfig  `yaml:"multivector" json:",omitempty" doc:"Make this a multi-dense vector (ColBERT-style late interaction): each point holds 1 or more token vectors of size components. Its source is a parquet list<list<float|double|half>> column."`
}

// MultivectorConfig makes a vector multi-dense.
type MultivectorConfig struct {
	Comparator string `yaml:"comparator" enum:"max_sim" default:"max_sim" doc:"How two points' token vectors are compared (Qdrant has max_sim: the sum over query tokens of the best match)."`
}

// SparseVectorConfig is one sparse vector's parameters.
type SparseVectorConfig struct {
	Modifier          string  `yaml:"modifier" enum:"none,idf" doc:"idf: Qdrant weighs each dimension by its inverse document frequency at search time (for BM25-style term weights); none (Qdrant's default): values as given."`
	OnDisk            *bool   `yaml:"on_disk" doc:"Keep the sparse index on disk."`
	FullScanThreshold *uint64 `yaml:"full_scan_threshold" doc:"When a filter leaves fewer points than this, search scans them instead of using the index."`
}

// HNSWConfig mirrors Qdrant's hnsw_config.
type HNSWConfig struct {
	M                 *uint64 `yaml:"m" doc:"Edges per node; 0 disables the index."`
	EfConstruct       *uint64 `yaml:"ef_construct" doc:"Build-time neighbours (>= 4)."`
	FullScanThreshold *uint64 `yaml:"full_scan_threshold" doc:"Below this size (KB) search scans."`
	OnDisk            *bool   `yaml:"on_disk" doc:"Keep the index on disk."`
}

// OptimizersConfig mirrors part of Qdrant's optimizers_config.
type OptimizersConfig struct {
	IndexingThreshold    *uint64 `yaml:"indexing_threshold" doc:"KB of vectors before indexing starts; 0 disables indexing."`
	DefaultSegmentNumber *uint64 `yaml:"default_segment_number" doc:"Target number of segments."`
}

// Source is one input file.
type Source struct {
	URL    string `yaml:"url" doc:"http(s) URL of the file itself (on Hugging Face .../resolve/..., not the /blob/ page link: a web page is refused, naming the URL to use). Downloaded (resumably) into the cache beside the state. Exactly one of url and path."`
	Path   string `yaml:"path" doc:"Local file, relative to the config file's directory."`
	Format string `yaml:"format" enum:"@formats" doc:"File format (a registered format plugin); inferred from the extension when omitted."`
	SHA256 string `yaml:"sha256" doc:"Expected SHA-256 (64 hex digits) of the whole file."`
	// Options are the keys a format plugin declares (Format.Options), such
	// as npz's array. They are part of the config hash.
	Options map[string]string `yaml:"-" json:",omitempty"`
	// HubEndpoint is HF_ENDPOINT (from the file's variable lookup) for an
	// hf:// source; empty: https://huggingface.co.
	HubEndpoint string `yaml:"-" json:",omitempty"`
}

// Option returns a format option's value ("" when unset).
func (s *Source) Option(key string) string { return s.Options[key] }

// IsRemote reports whether the source is downloaded.
func (s *Source) IsRemote() bool { return s.URL != "" }

// PointsConfig maps rows to points.
type PointsConfig struct {
	Limit   *int64                   `yaml:"limit" doc:"Use only the first N aligned rows (>= 1). Omit for all rows."`
	ID      IDSpec                   `yaml:"id" doc:"Point id: 'row' (0-based row index) or {column: NAME} (an unsigned integer or UUID text column of the payload source)." default:"row"`
	Vectors map[string]*VectorSource `yaml:"vectors" snappipe:"required" doc:"Collection vector name -> source name (an array source such as npy), {source, column} for a list column of a parquet source (a list of lists for a multivector), or {source, indices, values} for a sparse vector. A collection vector with no mapping stays empty on every point."`
	Payload *PayloadConfig           `yaml:"payload" doc:"Payload columns."`
	// Opt-ins for data snappipe refuses by default.
	AllowDuplicateIDs bool `yaml:"allow_duplicate_ids" doc:"Accept an id column whose ids repeat (a later row then overwrites an earlier point). Without it a load into a new collection that ends with fewer points than rows fails, naming colliding ids."`
	AllowNonFinite    bool `yaml:"allow_non_finite" doc:"Upsert vectors holding NaN or +/-Inf components. Without it such a row fails the run, naming the source and row."`
}

// IDSpec is `row` or {column: NAME}.
type IDSpec struct {
	Column string // empty: row index
}

// VectorSource is `NAME`, {source: NAME, column: COL} or, for a sparse
// vector, {source: NAME, indices: COL, values: COL}.
type VectorSource struct {
	Source string `yaml:"source" snappipe:"required" doc:"Source name."`
	Column string `yaml:"column" doc:"List column (parquet sources only): list<float|double|half> for a dense vector, list<list<...>> for a multivector."`
	// Sparse vectors: two list columns of one row length.
	Indices string `yaml:"indices" json:",omitempty" doc:"Sparse vectors: the list<uint32|int32|int64> column of dimension indices (each row's indices unique, 0 to 4294967295)."`
	Values  string `yaml:"values" json:",omitempty" doc:"Sparse vectors: the list<float|double> column of values, as long as the row's indices (an empty pair is an empty sparse vector)."`
}

// PayloadConfig selects the payload.
type PayloadConfig struct {
	Source  string   `yaml:"source" snappipe:"required" doc:"A parquet source whose row i is point i's payload."`
	Include []string `yaml:"include" doc:"Only these columns."`
	Exclude []string `yaml:"exclude" doc:"All columns but these."`
}

// UploadConfig tunes upserts.
type UploadConfig struct {
	BatchSize   int      `yaml:"batch_size" default:"256" doc:"Points per upsert request (1-10000)."`
	Parallel    int      `yaml:"parallel" default:"2" doc:"Concurrent upsert requests (1-64). 2 measured best against a co-located server on 2 cores; raise it for a remote server with network latency."`
	MaxAttempts int      `yaml:"max_attempts" default:"12" doc:"Attempts per batch on retryable errors (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED)."`
	MaxElapsed  Duration `yaml:"max_elapsed" default:"5m" doc:"Give up retrying one batch after this long."`
	Bulk        bool     `yaml:"bulk" doc:"Set hnsw m=0 during the load and restore it afterwards (Qdrant's bulk-upload advice)."`
}

// DownloadConfig bounds HTTP transfers.
type DownloadConfig struct {
	IdleTimeout    Duration `yaml:"idle_timeout" default:"60s" doc:"Abandon a request that receives less than 64 KiB within this long (waiting for headers or inside the body; a trickle counts as a stall) and retry it, within upload.max_attempts and upload.max_elapsed."`
	Stream         bool     `yaml:"stream" default:"true" doc:"Decode a file read front to back (npy, fvecs, bvecs) while it downloads, so rows are upserted before the last byte arrives; the run still ends only after the whole file is verified, and if the download drops bytes already used (the file changed on the server, a checksum mismatch) the checkpoint's upsert progress is cleared so the next run reloads every row. false: decode only verified files."`
	ParallelShards int      `yaml:"parallel_shards" default:"2" doc:"Shard files (of a shard set) downloaded at once per source, ahead of the one being decoded (1-64). Disk and memory are bounded by it, not by the number of shards."`
	// 16 GiB: ten times a LAION-5B embedding shard.
	MaxUndeclaredSize int64 `yaml:"max_undeclared_size" default:"17179869184" doc:"Most bytes accepted from a download whose size nobody declares (no Content-Length, X-Linked-Size or Content-Range total, and a format whose header does not tell, such as Parquet); more is an error. Declared sizes are always enforced exactly."`
}

// SnapshotConfig places the snapshot file.
type SnapshotConfig struct {
	Destination     string   `yaml:"destination" snappipe:"required" doc:"Where the verified snapshot lands: a directory (relative to the config file), or s3://BUCKET/PREFIX/ (any S3-compatible store; see snapshot.s3). The file keeps the server's snapshot name; its manifest is NAME.json beside it."`
	Scope           string   `yaml:"scope" enum:"collection,cluster" default:"collection" doc:"collection: one collection snapshot through qdrant.url (on a cluster it holds only that node's shards). cluster: one shard snapshot per shard, each from the peer (qdrant.peers) that holds it, plus a cluster manifest."`
	Keep            int      `yaml:"keep" doc:"Keep the newest N snapshots of the collection on the server; older ones are deleted after a new one is verified, never before (0: keep all)."`
	DestinationKeep int      `yaml:"destination_keep" doc:"Keep the newest N of this collection's snapshots (and their manifests) at the destination, directory or S3 prefix; older ones are deleted after a new one is verified (0: keep all)."`
	S3              S3Config `yaml:"s3" doc:"S3 options for an s3:// destination. Credentials and defaults come from the AWS SDK's standard chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, profiles)."`
	Timeout         Duration `yaml:"timeout" default:"30m" doc:"How long to wait for the server to create the snapshot."`
}

// RestoreTarget is one Qdrant the snapshot is restored into.
type RestoreTarget struct {
	URL          string   `yaml:"url" snappipe:"required" doc:"REST base URL of the target Qdrant (http or https)."`
	GRPCPort     int      `yaml:"grpc_port" default:"6334" doc:"The target's gRPC port on url's host (creates the collection when a cluster manifest is restored; single snapshots use REST only)."`
	Peers        []string `yaml:"peers" doc:"With snapshot.scope: cluster, the REST URLs of every node of the target cluster (default: url alone); each shard goes to the node holding it."`
	APIKey       Secret   `yaml:"api_key" doc:"The target's API key (sent only to url's origin; never printed)."`
	Collection   string   `yaml:"collection" doc:"Collection to restore into; default: collection.name."`
	Priority     string   `yaml:"priority" enum:"snapshot,replica,no_sync" default:"snapshot" doc:"Qdrant's recovery priority: snapshot (the snapshot's data wins), replica, or no_sync."`
	Alias        string   `yaml:"alias" doc:"After the restored collection is verified, point this alias at it (one atomic alias action), so readers switch without downtime; a failed restore leaves the alias where it was."`
	KeepPrevious *bool    `yaml:"keep_previous" doc:"With alias: keep the collection the alias pointed at before (default true); false deletes it after the switch."`
}

// WALConfig tunes the collection's write-ahead log.
type WALConfig struct {
	CapacityMB    *uint64 `yaml:"capacity_mb" doc:"Size of a WAL segment in MB."`
	SegmentsAhead *uint64 `yaml:"segments_ahead" doc:"WAL segments created ahead."`
}

// QuantizationConfig is exactly one of Qdrant's quantizations.
type QuantizationConfig struct {
	Scalar  *ScalarQuantization  `yaml:"scalar" doc:"Scalar quantization (int8)."`
	Product *ProductQuantization `yaml:"product" doc:"Product quantization."`
	Binary  *BinaryQuantization  `yaml:"binary" doc:"Binary quantization."`
}

// ScalarQuantization is Qdrant's scalar quantization.
type ScalarQuantization struct {
	Type      string   `yaml:"type" enum:"int8" default:"int8" doc:"Quantized type (int8)."`
	Quantile  *float64 `yaml:"quantile" doc:"Quantile for the value range (0.5-1.0)."`
	AlwaysRAM *bool    `yaml:"always_ram" doc:"Keep quantized vectors in RAM."`
}

// ProductQuantization is Qdrant's product quantization.
type ProductQuantization struct {
	Compression string `yaml:"compression" snappipe:"required" enum:"x4,x8,x16,x32,x64" doc:"Compression ratio."`
	AlwaysRAM   *bool  `yaml:"always_ram" doc:"Keep quantized vectors in RAM."`
}

// BinaryQuantization is Qdrant's binary quantization.
type BinaryQuantization struct {
	AlwaysRAM *bool `yaml:"always_ram" doc:"Keep quantized vectors in RAM."`
}

// StrictModeConfig is the part of Qdrant's strict mode a dataset snapshot
// sets.
type StrictModeConfig struct {
	Enabled                       *bool    `yaml:"enabled" doc:"Enforce the limits below."`
	MaxQueryLimit                 *uint32  `yaml:"max_query_limit" doc:"Most results one query may ask for."`
	MaxTimeout                    *uint32  `yaml:"max_timeout" doc:"Longest request timeout, in seconds."`
	UnindexedFilteringRetrieve    *bool    `yaml:"unindexed_filtering_retrieve" doc:"Allow filters on payload fields without an index in searches."`
	UnindexedFilteringUpdate      *bool    `yaml:"unindexed_filtering_update" doc:"Allow filters on payload fields without an index in updates."`
	SearchMaxHNSWEf               *uint32  `yaml:"search_max_hnsw_ef" doc:"Largest hnsw_ef a search may use."`
	SearchAllowExact              *bool    `yaml:"search_allow_exact" doc:"Allow exact (brute-force) searches."`
	SearchMaxOversampling         *float64 `yaml:"search_max_oversampling" doc:"Largest quantization oversampling a search may use."`
	UpsertMaxBatchsize            *uint64  `yaml:"upsert_max_batchsize" doc:"Most points one upsert may carry; with enabled, upload.batch_size must not exceed it."`
	MaxCollectionVectorSizeBytes  *uint64  `yaml:"max_collection_vector_size_bytes" doc:"Largest total size of the collection's vectors."`
	MaxCollectionPayloadSizeBytes *uint64  `yaml:"max_collection_payload_size_bytes" doc:"Largest total size of the collection's payload."`
	MaxPointsCount                *uint64  `yaml:"max_points_count" doc:"Most points the collection may hold."`
	ReadRateLimit                 *uint32  `yaml:"read_rate_limit" doc:"Read requests per minute."`
	WriteRateLimit                *uint32  `yaml:"write_rate_limit" doc:"Write requests per minute (snappipe's upserts count: a low limit slows the load through retries)."`
}

// S3Config reaches an S3-compatible store.
type S3Config struct {
	Endpoint       string `yaml:"endpoint" doc:"Endpoint URL of an S3-compatible store (MinIO, R2, ...); default: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL."`
	Region         string `yaml:"region" doc:"Region; default: AWS_REGION or the profile's, else us-east-1."`
	ForcePathStyle bool   `yaml:"force_path_style" doc:"Address buckets as ENDPOINT/BUCKET instead of BUCKET.ENDPOINT (most self-hosted stores need it)."`
	PartSize       int    `yaml:"part_size" default:"16" doc:"Multipart part size in MiB (5-5120): the memory one upload holds."`
}

// IsS3 reports whether the snapshot goes to S3.
func (s SnapshotConfig) IsS3() bool { return strings.HasPrefix(s.Destination, "s3://") }

// S3Location splits an s3:// destination into bucket and key prefix (with
// a trailing slash unless empty).
func (s SnapshotConfig) S3Location() (bucket, prefix string) {
	rest := strings.TrimPrefix(s.Destination, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return bucket, prefix
}

// Secret is a string never shown: String and JSON give a placeholder.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "(sensitive)"
}

// GoString hides the value from %#v too (a Secret is a string, which %#v
// would otherwise print quoted, in full).
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalJSON hides the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Reveal returns the value, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// Duration is a time.Duration written as a Go duration string.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Resolve makes a path from the config relative to its directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// PosOf returns the position of a key path's value, if decoded.
func (c *Config) PosOf(path string) Pos { return c.pos[path] }

// Limit returns the row limit, or -1 for none.
func (p *PointsConfig) LimitOr() int64 {
	if p.Limit == nil {
		return -1
	}
	return *p.Limit
}
