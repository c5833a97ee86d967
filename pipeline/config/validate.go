package config

import (
	"encoding/hex"

	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/snappipe/snappipe/internal/hfhub"
)

var s3BucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// validate checks what decoding cannot: ranges, references between keys,
// and combinations. It reports every problem, at the key's position.
func validate(c *Config, d *decoder) {
	defer warnUnused(c, d)
	defer validateShards(c, d)
	if _, ok := d.pos["version"]; ok && c.Version != 1 {
		d.at("version", "unsupported version %d (expected 1)", c.Version)
	}
	if c.Name != "" && !nameRE.MatchString(c.Name) {
		d.at("name", "invalid name %q: use letters, digits, '.', '_' and '-' (it names the state file)", c.Name)
	}
	if c.Qdrant.URL != "" {
		u, err := url.Parse(c.Qdrant.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.at("qdrant.url", "invalid URL %q (expected http://HOST:PORT or https://HOST:PORT)", redactURL(c.Qdrant.URL))
		}
	}
	if c.Qdrant.GRPCPort < 0 || c.Qdrant.GRPCPort > 65535 {
		d.at("qdrant.grpc_port", "port %d out of range (1-65535)", c.Qdrant.GRPCPort)
	}
	// Names become file names (sources: the download cache) or keys the
	// user reads back: identifiers only, so no name can leave a directory.
	for _, n := range SortedKeys(c.Sources) {
		if !nameRE.MatchString(n) {
			d.at("sources."+n, "invalid source name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", n)
		}
	}
	for _, n := range SortedKeys(c.Collection.Vectors) {
		if !nameRE.MatchString(n) {
			d.at("collection.vectors."+n, "invalid vector name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", n)
		}
	}
	col := c.Collection
	if _, ok := d.pos["collection.name"]; ok {
		switch {
		case len(col.Name) < 1 || len(col.Name) > 255:
			d.at("collection.name", "collection name must be 1-255 characters")
		case strings.ContainsAny(col.Name, "/\x00"):
			d.at("collection.name", "collection name %q must not contain '/'", col.Name)
		}
	}
	if _, ok := d.pos["collection.vectors"]; ok && len(col.Vectors) == 0 && len(col.SparseVectors) == 0 {
		d.at("collection.vectors", "at least one named vector (or a sparse vector under collection.sparse_vectors) is required")
	}
	for _, n := range SortedKeys(col.SparseVectors) {
		p := "collection.sparse_vectors." + n
		if !nameRE.MatchString(n) {
			d.at(p, "invalid vector name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", n)
		}
		if _, ok := col.Vectors[n]; ok {
			d.at(p, "%q is both a dense vector (collection.vectors) and a sparse vector: a name is one or the other", n)
		}
		if col.SparseVectors[n] == nil {
			col.SparseVectors[n] = &SparseVectorConfig{} // `NAME: ~`: Qdrant's defaults
		}
	}
	for _, name := range SortedKeys(col.Vectors) {
		v := col.Vectors[name]
		p := "collection.vectors." + name
		if _, ok := d.pos[p+".size"]; ok && (v.Size < 1 || v.Size > 65536) {
			d.at(p+".size", "size %d out of range (1-65536)", v.Size)
		}
	}
	if sn := col.ShardNumber; sn != nil && *sn < 1 {
		d.at("collection.shard_number", "must be at least 1")
	}
	if rf := col.ReplicationFactor; rf != nil && *rf < 1 {
		d.at("collection.replication_factor", "must be at least 1")
	}
	if h := col.HNSW; h != nil && h.EfConstruct != nil && *h.EfConstruct < 4 {
		d.at("collection.hnsw.ef_construct", "must be at least 4")
	}

	if _, ok := d.pos["sources"]; ok && len(c.Sources) == 0 {
		d.at("sources", "at least one source is required")
	}
	for _, name := range SortedKeys(c.Sources) {
		s := c.Sources[name]
		p := "sources." + name
		if s == nil {
			d.at(p, "expected {url: ...} or {path: ...}")
			continue
		}
		if d.failed[p+".url"] || d.failed[p+".path"] {
			// Its location is already reported (an unset variable, a
			// wrong type): nothing more to say about a location unknown.
			continue
		}
		switch {
		case s.URL != "" && s.Path != "":
			d.at(p+".path", "give url or path, not both")
		case s.URL == "" && s.Path == "":
			d.at(p, "missing url or path")
		case hfhub.IsRef(s.URL):
			// A Hugging Face dataset file (or a {A..B} range of them)
			// becomes its resolve URL; a glob stays, listed at plan and
			// apply time.
			r, err := hfhub.ParseWith(s.URL, s.HubEndpoint)
			switch {
			case err != nil:
				d.at(p+".url", "%v", err)
			case r.Path == "":
				d.at(p+".url", "%s names a repository, not a file: add the file's path (a glob such as *.parquet names many)", s.URL)
			case !r.HasGlob():
				s.URL = r.Resolve(r.Path)
			}
		case s.URL != "":
			u, err := url.Parse(s.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.at(p+".url", "invalid URL %q (expected http://, https:// or hf://datasets/OWNER/NAME/PATH)", redactURL(s.URL))
			}
		}
		if s.Format == "" {
			loc := s.Path
			if s.URL != "" {
				if u, err := url.Parse(s.URL); err == nil {
					loc = u.Path
				}
			}
			if f := FormatForName(loc); f != nil {
				s.Format = f.Name()
			} else {
				d.at(p, "cannot tell the format from %q (known extensions: %s): add format: (one of %s)", path.Base(loc),
					strings.Join(formatExtensions(), ", "), strings.Join(FormatNames(), ", "))
			}
		}
		if f := FormatByName(s.Format); f != nil {
			owners := formatOptions()
			for _, k := range SortedKeys(s.Options) {
				if !hasOption(f, k) {
					d.at(p+"."+k, "format %s has no option %s (%s is an option of %s)", s.Format, k, k, strings.Join(owners[k], ", "))
				}
			}
		}
		if s.SHA256 != "" {
			if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != 32 {
				d.at(p+".sha256", "expected 64 hex digits of SHA-256")
			} else {
				s.SHA256 = strings.ToLower(s.SHA256)
			}
		}
	}
	srcNames := SortedKeys(c.Sources)
	refSource := func(p, name string) *Source {
		if name == "" {
			return nil
		}
		s, ok := c.Sources[name]
		if !ok || s == nil {
			msg := fmt.Sprintf("source %q is not defined under sources", name)
			if sg := suggest(name, srcNames); sg != "" {
				msg += fmt.Sprintf("; did you mean %q?", sg)
			} else if len(srcNames) > 0 {
				msg += fmt.Sprintf(" (defined: %s)", strings.Join(srcNames, ", "))
			}
			d.at(p, "%s", msg)
			return nil
		}
		return s
	}
	pts := c.Points
	if pts.Limit != nil && *pts.Limit < 1 {
		d.at("points.limit", "limit %d must be at least 1 (omit it for all rows)", *pts.Limit)
	}
	if _, ok := d.pos["points.vectors"]; ok && len(pts.Vectors) == 0 {
		d.at("points.vectors", "at least one vector mapping is required")
	}
	vecNames := append(SortedKeys(col.Vectors), SortedKeys(col.SparseVectors)...)
	slices.Sort(vecNames)
	for _, vn := range SortedKeys(pts.Vectors) {
		vs := pts.Vectors[vn]
		p := "points.vectors." + vn
		_, dense := col.Vectors[vn]
		_, sparse := col.SparseVectors[vn]
		if !dense && !sparse && len(vecNames) > 0 {
			msg := fmt.Sprintf("vector %q is not defined under collection.vectors or collection.sparse_vectors", vn)
			if sg := suggest(vn, vecNames); sg != "" {
				msg += fmt.Sprintf("; did you mean %q?", sg)
			}
			d.at(p, "%s", msg)
		}
		if vs == nil {
			continue
		}
		sp := p
		if _, ok := d.pos[p+".source"]; ok {
			sp = p + ".source"
		}
		if !dense && !sparse {
			refSource(sp, vs.Source) // its kind is unknown: only the source is checked
			continue
		}
		if sparse {
			if vs.Column != "" {
				d.at(p+".column", "%q is a sparse vector: give {source, indices, values} (two list columns), not column", vn)
			}
			if vs.Indices == "" || vs.Values == "" {
				d.at(p, "%q is a sparse vector: give {source: NAME, indices: COLUMN, values: COLUMN}", vn)
			}
		} else {
			for _, k := range []string{"indices", "values"} {
				if _, ok := d.pos[p+"."+k]; ok {
					d.at(p+"."+k, "%s is for sparse vectors (collection.sparse_vectors); %q is a dense vector: use column", k, vn)
				}
			}
		}
		s := refSource(sp, vs.Source)
		if s == nil {
			continue
		}
		f := FormatByName(s.Format)
		multi := dense && col.Vectors[vn] != nil && col.Vectors[vn].Multivector != nil
		switch {
		case f == nil:
		case (sparse || multi) && !f.Table():
			kind := "a sparse vector"
			if multi {
				kind = "a multivector"
			}
			d.at(sp, "source %q is %s; %s reads list columns of a table source such as parquet", vs.Source, s.Format, kind)
		case sparse:
		case !f.Table() && vs.Column != "":
			d.at(p+".column", "source %q is %s: it has no columns", vs.Source, s.Format)
		case f.Table() && vs.Column == "":
			d.at(p, "source %q is %s: name the list column, e.g. {source: %s, column: embedding}", vs.Source, s.Format, vs.Source)
		}
	}
	if pl := pts.Payload; pl != nil {
		if s := refSource("points.payload.source", pl.Source); s != nil {
			if f := FormatByName(s.Format); f != nil && !f.Table() {
				d.at("points.payload.source", "payload source %q must be a table source, such as parquet (it is %s)", pl.Source, s.Format)
			}
		}
		if len(pl.Include) > 0 && len(pl.Exclude) > 0 {
			d.at("points.payload.exclude", "give include or exclude, not both")
		}
	}
	if pts.ID.Column != "" && (pts.Payload == nil || pts.Payload.Source == "") {
		d.at("points.id.column", "an id column needs points.payload.source (the parquet source it is read from)")
	}
	up := c.Upload
	if up.BatchSize < 1 || up.BatchSize > 10000 {
		d.at("upload.batch_size", "batch_size %d out of range (1-10000)", up.BatchSize)
	}
	if up.Parallel < 1 || up.Parallel > 64 {
		d.at("upload.parallel", "parallel %d out of range (1-64)", up.Parallel)
	}
	if up.MaxAttempts < 1 {
		d.at("upload.max_attempts", "max_attempts must be at least 1")
	}
	if sm := c.Collection.StrictMode; sm != nil && sm.Enabled != nil && *sm.Enabled && sm.UpsertMaxBatchsize != nil && uint64(up.BatchSize) > *sm.UpsertMaxBatchsize {
		d.at("upload.batch_size", "batch_size %d exceeds collection.strict_mode.upsert_max_batchsize %d: Qdrant would refuse every full batch", up.BatchSize, *sm.UpsertMaxBatchsize)
	}
	if c.Download.IdleTimeout <= 0 {
		d.at("download.idle_timeout", "idle_timeout must be positive")
	}
	if c.Download.ParallelShards < 1 || c.Download.ParallelShards > 64 {
		d.at("download.parallel_shards", "parallel_shards %d out of range (1-64)", c.Download.ParallelShards)
	}
	if c.Download.MaxUndeclaredSize < 1 {
		d.at("download.max_undeclared_size", "max_undeclared_size must be at least 1")
	}
	if _, ok := d.pos["snapshot.destination"]; ok && c.Snapshot.Destination == "" {
		d.at("snapshot.destination", "destination must not be empty")
	}
	if c.Snapshot.IsS3() {
		if b, _ := c.Snapshot.S3Location(); !s3BucketRE.MatchString(b) {
			d.at("snapshot.destination", "invalid S3 destination %q: expected s3://BUCKET/PREFIX/ with a bucket name of 3-63 lowercase letters, digits, '.' and '-'", c.Snapshot.Destination)
		}
		if e := c.Snapshot.S3.Endpoint; e != "" {
			if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.at("snapshot.s3.endpoint", "invalid endpoint %q (expected http:// or https://)", redactURL(e))
			}
		}
	} else if strings.Contains(c.Snapshot.Destination, "://") {
		d.at("snapshot.destination", "unsupported destination %q: a directory or s3://BUCKET/PREFIX/", c.Snapshot.Destination)
	}
	if c.Snapshot.Keep < 0 {
		d.at("snapshot.keep", "keep must be 0 (keep all) or more")
	}
	if c.Snapshot.DestinationKeep < 0 {
		d.at("snapshot.destination_keep", "destination_keep must be 0 (keep all) or more")
	}
	var peers []string
	checkQuant := func(path string, q *QuantizationConfig) {
		if q == nil {
			return
		}
		n := 0
		for _, set := range []bool{q.Scalar != nil, q.Product != nil, q.Binary != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			d.at(path, "give exactly one of scalar, product and binary (got %d)", n)
		}
		if q.Scalar != nil && q.Scalar.Quantile != nil && (*q.Scalar.Quantile < 0.5 || *q.Scalar.Quantile > 1) {
			d.at(path+".scalar.quantile", "quantile %v out of range (0.5-1.0)", *q.Scalar.Quantile)
		}
	}
	checkQuant("collection.quantization", c.Collection.Quantization)
	if w := c.Collection.WriteConsistencyFactor; w != nil && *w < 1 {
		d.at("collection.write_consistency_factor", "write_consistency_factor must be at least 1")
	}
	for _, n := range SortedKeys(c.Collection.Vectors) {
		if v := c.Collection.Vectors[n]; v != nil {
			checkQuant("collection.vectors."+n+".quantization", v.Quantization)
		}
	}
	for i, p := range c.Qdrant.Peers {
		list := []string{p}
		if rangeRE.MatchString(p) {
			files, err := expandRange(p, func(_ int, v string) ShardFile { return ShardFile{URL: v} })
			if err != nil {
				d.at(fmt.Sprintf("qdrant.peers[%d]", i), "%v", err)
				continue
			}
			list = nil
			for _, f := range files {
				list = append(list, f.URL)
			}
		}
		for _, q := range list {
			if u, err := url.Parse(q); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.at(fmt.Sprintf("qdrant.peers[%d]", i), "invalid URL %q (expected http:// or https://)", redactURL(q))
			}
		}
		peers = append(peers, list...)
	}
	c.Qdrant.Peers = peers
	if c.Snapshot.Scope == "cluster" && len(c.Qdrant.Peers) == 0 {
		d.at("snapshot.scope", "scope: cluster needs qdrant.peers (the REST URL of every node)")
	}
	for i, r := range c.Restore {
		p := fmt.Sprintf("restore[%d]", i)
		if r == nil {
			d.at(p, "expected {url: ..., collection: ...}")
			continue
		}
		if u, err := url.Parse(r.URL); r.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			d.at(p+".url", "invalid URL %q (expected http:// or https://)", redactURL(r.URL))
		}
		if r.Collection == "" {
			r.Collection = c.Collection.Name
		}
	}
	if ps := c.Snapshot.S3.PartSize; ps < 5 || ps > 5120 {
		d.at("snapshot.s3.part_size", "part_size %d MiB out of range (5-5120)", ps)
	}
}

// RedactURL is a URL as snappipe may store it (state file, config hash,
// cache key): without userinfo, and with the values of secret-looking query
// parameters (token, sig, signature, X-Amz-Signature, X-Amz-Credential,
// X-Amz-Security-Token, password, secret, api_key, ...) replaced, so a
// rotated token does not look like another file. Requests use the URL as
// given.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if secretParam(k) {
				q[k] = []string{"REDACTED"}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "sig", "signature", "key", "apikey", "api_key", "api-key", "auth", "code":
		return true
	}
	for _, part := range []string{"token", "signature", "credential", "secret", "password", "passwd"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// redactURL drops userinfo and query (which may hold tokens) from a URL
// before it is shown.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}

// SortedKeys returns a map's keys in order: every listing snappipe prints
// or iterates for output is deterministic.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// validateShards checks, offline, what shard sets can tell without files:
// a {A..B} range expands, ranges of different sources pair by index, and
// shard sets (ranges, globs) are not mixed with single files.
func validateShards(c *Config, d *decoder) {
	if d.diags.Err() != nil {
		return
	}
	used := UsedSources(c)
	sets := map[string][]ShardFile{}
	sharded := map[string]bool{}
	key := func(s *Source, name string) string {
		if s.URL != "" {
			return "sources." + name + ".url"
		}
		return "sources." + name + ".path"
	}
	anyGlob, bad := false, false
	for _, name := range used {
		s := c.Sources[name]
		if s == nil {
			continue
		}
		sharded[name] = s.IsShardSet()
		if sharded[name] && !s.HasRange() {
			anyGlob = true
			sets[name] = nil
			continue
		}
		files, err := s.Shards(c.Dir)
		if err != nil {
			d.at(key(s, name), "%v", err) // every source's, all at once
			bad = true
			continue
		}
		sets[name] = files
	}
	if bad {
		return
	}
	if anyGlob {
		// Globs list files at plan/apply time; check only the mix here.
		for name := range sets {
			if sets[name] == nil {
				sets[name] = []ShardFile{}
			}
		}
		var plain, multi []string
		for _, n := range SortedKeys(sets) {
			if sharded[n] {
				multi = append(multi, n)
			} else {
				plain = append(plain, n)
			}
		}
		if len(plain) > 0 {
			d.at(key(c.Sources[plain[0]], plain[0]), "source %s is a single file while %s are shard sets: rows pair by shard index, so every source feeding points must be a shard set", strings.Join(plain, ", "), strings.Join(multi, ", "))
		}
		return
	}
	if _, err := PairShards(sets, sharded); err != nil {
		first := used[0]
		for _, n := range used {
			if sharded[n] {
				first = n
				break
			}
		}
		d.at(key(c.Sources[first], first), "%v", err)
	}
}

// warnUnused warns about sources no point uses, when the file has no
// error (an unused source is then no follow-on of a typo).
func warnUnused(c *Config, d *decoder) {
	if d.diags.Err() != nil || len(c.Points.Vectors) == 0 {
		return
	}
	used := UsedSources(c)
	for _, name := range SortedKeys(c.Sources) {
		if !slices.Contains(used, name) {
			d.warn("sources."+name, "source %q is not used by any point (points.vectors, points.payload): it is neither checked nor read", name)
		}
	}
}

// UsedSources returns the sources that feed points, sorted.
func UsedSources(c *Config) []string {
	used := map[string]bool{}
	for _, v := range c.Points.Vectors {
		if v != nil && v.Source != "" {
			used[v.Source] = true
		}
	}
	if c.Points.Payload != nil && c.Points.Payload.Source != "" {
		used[c.Points.Payload.Source] = true
	}
	return SortedKeys(used)
}
