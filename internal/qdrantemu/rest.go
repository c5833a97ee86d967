package qdrantemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// restHandler serves the REST endpoints snappipe and its tests use, with
// Qdrant's JSON envelopes.
func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"title": "qdrant - vector search engine", "version": Version, "commit": "emulator"})
	})
	for _, p := range []string{"/healthz", "/livez"} {
		mux.HandleFunc("GET "+p, textOK("healthz check passed"))
	}
	mux.HandleFunc("GET /readyz", textOK("all shards are ready"))
	mux.HandleFunc("GET /collections", s.restListCollections)
	mux.HandleFunc("GET /collections/{c}", s.restGetCollection)
	mux.HandleFunc("GET /collections/{c}/exists", s.restExists)
	mux.HandleFunc("POST /collections/{c}/snapshots", s.restCreateSnapshot)
	mux.HandleFunc("GET /collections/{c}/snapshots", s.restListSnapshots)
	mux.HandleFunc("GET /collections/{c}/snapshots/{name}", s.restDownloadSnapshot)
	mux.HandleFunc("DELETE /collections/{c}/snapshots/{name}", s.restDeleteSnapshot)
	mux.HandleFunc("POST /collections/{c}/snapshots/upload", s.restUploadSnapshot)
	mux.HandleFunc("PUT /collections/{c}/snapshots/recover", s.restRecoverSnapshot)
	mux.HandleFunc("POST /collections/{c}/points/count", s.restCount)
	mux.HandleFunc("POST /collections/aliases", s.restUpdateAliases)
	mux.HandleFunc("GET /aliases", s.restListAliases)
	mux.HandleFunc("DELETE /collections/{c}", s.restDeleteCollection)
	mux.HandleFunc("GET /cluster", s.restCluster)
	mux.HandleFunc("GET /collections/{c}/cluster", s.restCollectionCluster)
	mux.HandleFunc("POST /collections/{c}/shards/{id}/snapshots", s.restShardSnapshotCreate)
	mux.HandleFunc("GET /collections/{c}/shards/{id}/snapshots", s.restShardSnapshotList)
	mux.HandleFunc("GET /collections/{c}/shards/{id}/snapshots/{name}", s.restShardSnapshotDownload)
	mux.HandleFunc("DELETE /collections/{c}/shards/{id}/snapshots/{name}", s.restShardSnapshotDelete)
	mux.HandleFunc("POST /collections/{c}/shards/{id}/snapshots/upload", s.restShardSnapshotUpload)
	mux.HandleFunc("PUT /collections/{c}/shards/{id}/snapshots/recover", s.restShardSnapshotRecover)
	mux.HandleFunc("GET /collections/{c}/aliases", s.restCollectionAliases)
	return s.restAuth(mux)
}

func textOK(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, body)
	}
}

func (s *Server) restAuth(next http.Handler) http.Handler {
	open := map[string]bool{"/": true, "/healthz": true, "/readyz": true, "/livez": true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.APIKey != "" && !open[r.URL.Path] {
			ok := r.Header.Get("api-key") == s.opts.APIKey || r.Header.Get("Authorization") == "Bearer "+s.opts.APIKey
			if !ok {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, "Must provide an API key or an Authorization bearer token")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func ok(w http.ResponseWriter, start time.Time, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"result": result, "status": "ok", "time": since(start)})
}

// fail renders an error with Qdrant's REST status code for its gRPC code.
func fail(w http.ResponseWriter, start time.Time, err error) {
	code := http.StatusInternalServerError
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.AlreadyExists:
		code = http.StatusConflict
	case codes.InvalidArgument:
		code = http.StatusBadRequest
	case codes.Unauthenticated:
		code = http.StatusUnauthorized
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.DeadlineExceeded, codes.Canceled:
		code = http.StatusRequestTimeout
	case codes.ResourceExhausted:
		code = http.StatusTooManyRequests
	case codes.Unavailable:
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": map[string]any{"error": st.Message()}, "time": since(start)})
}

func (s *Server) restListCollections(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	resp, _ := (&collectionsService{s: s}).List(r.Context(), &qdrant.ListCollectionsRequest{})
	list := []map[string]string{}
	for _, c := range resp.GetCollections() {
		list = append(list, map[string]string{"name": c.GetName()})
	}
	ok(w, start, map[string]any{"collections": list})
}

func (s *Server) restExists(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.mu.RLock()
	_, e := s.collections[r.PathValue("c")]
	s.mu.RUnlock()
	ok(w, start, map[string]any{"exists": e})
}

// restCount is POST /collections/{c}/points/count ({"exact": true}; no
// filters, as over gRPC).
func (s *Server) restCount(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var body struct {
		Exact  *bool           `json:"exact"`
		Filter json.RawMessage `json:"filter"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			fail(w, start, badRequest("Json deserialize error: "+err.Error()))
			return
		}
	}
	if len(body.Filter) > 0 && string(body.Filter) != "null" {
		fail(w, start, status.Error(codes.Unimplemented, "qdrant emulator: filters are not supported"))
		return
	}
	col, err := s.get(r.PathValue("c"))
	if err != nil {
		fail(w, start, err)
		return
	}
	col.mu.RLock()
	n := col.count()
	col.mu.RUnlock()
	ok(w, start, map[string]any{"count": n})
}

func (s *Server) restGetCollection(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	col, err := s.get(r.PathValue("c"))
	if err != nil {
		fail(w, start, err)
		return
	}
	ok(w, start, restCollectionInfo(col.info(), col.named))
}

func lower(s string) string { return strings.ToLower(s) }

func restVectorParams(p *qdrant.VectorParams) map[string]any {
	m := map[string]any{"size": p.GetSize(), "distance": p.GetDistance().String()}
	if p.Datatype != nil {
		m["datatype"] = lower(p.GetDatatype().String())
	}
	if p.OnDisk != nil {
		m["on_disk"] = p.GetOnDisk()
	}
	if p.HnswConfig != nil {
		m["hnsw_config"] = p.GetHnswConfig()
	}
	return m
}

// restCollectionInfo renders CollectionInfo in Qdrant's REST shape.
func restCollectionInfo(ci *qdrant.CollectionInfo, named bool) map[string]any {
	cfg := ci.GetConfig()
	params := map[string]any{
		"shard_number":             cfg.GetParams().GetShardNumber(),
		"replication_factor":       cfg.GetParams().GetReplicationFactor(),
		"write_consistency_factor": cfg.GetParams().GetWriteConsistencyFactor(),
		"on_disk_payload":          cfg.GetParams().GetOnDiskPayload(),
	}
	vc := cfg.GetParams().GetVectorsConfig()
	if !named {
		params["vectors"] = restVectorParams(vc.GetParams())
	} else {
		vs := map[string]any{}
		for n, p := range vc.GetParamsMap().GetMap() {
			vs[n] = restVectorParams(p)
		}
		params["vectors"] = vs
	}
	h := cfg.GetHnswConfig()
	o := cfg.GetOptimizerConfig()
	schema := map[string]any{}
	for f, si := range ci.GetPayloadSchema() {
		schema[f] = map[string]any{"data_type": lower(si.GetDataType().String()), "points": si.GetPoints()}
	}
	return map[string]any{
		"status":                "green",
		"optimizer_status":      "ok",
		"indexed_vectors_count": ci.GetIndexedVectorsCount(),
		"points_count":          ci.GetPointsCount(),
		"segments_count":        ci.GetSegmentsCount(),
		"config": map[string]any{
			"params": params,
			"hnsw_config": map[string]any{"m": h.GetM(), "ef_construct": h.GetEfConstruct(), "full_scan_threshold": h.GetFullScanThreshold(),
				"max_indexing_threads": h.GetMaxIndexingThreads(), "on_disk": h.GetOnDisk()},
			"optimizer_config": map[string]any{"deleted_threshold": o.GetDeletedThreshold(), "vacuum_min_vector_number": o.GetVacuumMinVectorNumber(),
				"default_segment_number": o.GetDefaultSegmentNumber(), "indexing_threshold": o.GetIndexingThreshold(), "flush_interval_sec": o.GetFlushIntervalSec()},
			"wal_config":          map[string]any{"wal_capacity_mb": cfg.GetWalConfig().GetWalCapacityMb(), "wal_segments_ahead": cfg.GetWalConfig().GetWalSegmentsAhead()},
			"quantization_config": nil,
		},
		"payload_schema": schema,
	}
}

func (s *Server) restCreateSnapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := r.PathValue("c")
	if _, err := s.get(c); err != nil {
		fail(w, start, err)
		return
	}
	if r.URL.Query().Get("wait") == "false" {
		// Qdrant answers 202 at once and never tells the name.
		go s.createSnapshot(context.Background(), c)
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "time": since(start)})
		return
	}
	d, err := s.createSnapshot(r.Context(), c)
	if err != nil {
		fail(w, start, err)
		return
	}
	ok(w, start, d.restJSON())
}

func (s *Server) restListSnapshots(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ds, err := s.listSnapshots(r.PathValue("c"))
	if err != nil {
		fail(w, start, err)
		return
	}
	out := []map[string]any{}
	for _, d := range ds {
		out = append(out, d.restJSON())
	}
	ok(w, start, out)
}

// corruptingWriter inverts the first body byte it writes.
type corruptingWriter struct {
	http.ResponseWriter
	done bool
}

func (c *corruptingWriter) Write(p []byte) (int, error) {
	if !c.done && len(p) > 0 {
		c.done = true
		q := append([]byte(nil), p...)
		q[0] = ^q[0]
		return c.ResponseWriter.Write(q)
	}
	return c.ResponseWriter.Write(p)
}

// truncatingWriter aborts the response after limit body bytes.
// throttledWriter sends at most rate bytes a second, in 64 KiB chunks.
type throttledWriter struct {
	http.ResponseWriter
	rate int64
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 64<<10)
		m, err := t.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := t.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(time.Duration(int64(k) * int64(time.Second) / t.rate))
		p = p[k:]
	}
	return n, nil
}

type truncatingWriter struct {
	http.ResponseWriter
	left int64
}

func (t *truncatingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > t.left {
		t.ResponseWriter.Write(p[:t.left])
		t.left = 0
		if f, ok := t.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // drops the connection mid-body
	}
	t.left -= int64(len(p))
	return t.ResponseWriter.Write(p)
}

func (s *Server) restDownloadSnapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, err := s.snapshotPath(r.PathValue("c"), r.PathValue("name"))
	if err != nil {
		fail(w, start, err)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		fail(w, start, status.Errorf(codes.NotFound, "Not found: Snapshot %s not found", r.PathValue("name")))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fail(w, start, err)
		return
	}
	s.faultMu.Lock()
	limit := s.faults.TruncateDownloadAfter
	rate := s.faults.DownloadRate
	s.faultMu.Unlock()
	w.Header().Set("Content-Type", "application/octet-stream")
	var rw http.ResponseWriter = w
	if rate > 0 {
		rw = &throttledWriter{ResponseWriter: rw, rate: rate}
	}
	if limit > 0 {
		rw = &truncatingWriter{ResponseWriter: w, left: limit}
	}
	if s.takeCorruptDownload() {
		rw = &corruptingWriter{ResponseWriter: rw}
	}
	s.record(Op{At: start, Kind: "download", Collection: r.PathValue("c")})
	http.ServeContent(rw, r, fi.Name(), fi.ModTime(), f)
}

func (s *Server) restDeleteSnapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if err := s.deleteSnapshot(r.PathValue("c"), r.PathValue("name")); err != nil {
		fail(w, start, err)
		return
	}
	ok(w, start, true)
}

func badRequest(msg string) error { return status.Error(codes.InvalidArgument, msg) }

func (s *Server) restUploadSnapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := r.PathValue("c")
	tmp, ok1 := s.receiveUpload(w, r, start)
	if !ok1 {
		return
	}
	defer os.Remove(tmp)
	if err := s.restore(c, tmp, r.URL.Query().Get("checksum")); err != nil {
		fail(w, start, err)
		return
	}
	s.record(Op{At: start, Kind: "upload", Collection: c})
	ok(w, start, true)
}

// receiveUpload reads the multipart field "snapshot" into a temporary
// file (answering the request itself on an error).
func (s *Server) receiveUpload(w http.ResponseWriter, r *http.Request, start time.Time) (string, bool) {
	if err := checkPriority(r.URL.Query().Get("priority")); err != nil {
		fail(w, start, err)
		return "", false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		fail(w, start, badRequest("Wrong input: expected multipart/form-data with field \"snapshot\""))
		return "", false
	}
	mr, err := r.MultipartReader()
	if err != nil {
		fail(w, start, badRequest("Wrong input: "+err.Error()))
		return "", false
	}
	tmp, err := os.CreateTemp(s.opts.SnapshotsDir, ".upload-*.snapshot")
	if err != nil {
		fail(w, start, err)
		return "", false
	}
	defer tmp.Close()
	found := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			os.Remove(tmp.Name())
			fail(w, start, badRequest("Wrong input: "+err.Error()))
			return "", false
		}
		if part.FormName() == "snapshot" {
			if _, err := io.Copy(tmp, part); err != nil {
				os.Remove(tmp.Name())
				fail(w, start, badRequest("Wrong input: "+err.Error()))
				return "", false
			}
			found = true
		}
		part.Close()
	}
	if !found {
		os.Remove(tmp.Name())
		fail(w, start, badRequest("Wrong input: multipart field \"snapshot\" is missing"))
		return "", false
	}
	return tmp.Name(), true
}

func checkPriority(p string) error {
	switch p {
	case "", "no_sync", "snapshot", "replica":
		return nil
	}
	return badRequest(fmt.Sprintf("Wrong input: unknown priority %q (expected no_sync, snapshot or replica)", p))
}

func (s *Server) restRecoverSnapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := r.PathValue("c")
	var body struct {
		Location string  `json:"location"`
		Priority string  `json:"priority"`
		Checksum *string `json:"checksum"`
		APIKey   *string `json:"api_key"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		fail(w, start, badRequest("Json deserialize error: "+err.Error()))
		return
	}
	if err := checkPriority(body.Priority); err != nil {
		fail(w, start, err)
		return
	}
	checksum := ""
	if body.Checksum != nil {
		checksum = *body.Checksum
	}
	path, cleanup, err := s.snapshotLocation(r.Context(), body.Location, body.APIKey)
	if err != nil {
		fail(w, start, err)
		return
	}
	defer cleanup()
	if err := s.restore(c, path, checksum); err != nil {
		fail(w, start, err)
		return
	}
	s.record(Op{At: start, Kind: "recover", Collection: c})
	ok(w, start, true)
}

// snapshotLocation resolves a recover location to a local file: a file
// inside the snapshots directory (Qdrant recovers from nowhere else), or an
// http(s) URL fetched into a temporary file (cleanup removes it).
func (s *Server) snapshotLocation(ctx context.Context, location string, apiKey *string) (string, func(), error) {
	u, err := url.Parse(location)
	if err != nil || location == "" {
		return "", nil, badRequest(fmt.Sprintf("Wrong input: invalid snapshot location %q", location))
	}
	switch u.Scheme {
	case "file":
		path := filepath.Clean(u.Path)
		root, _ := filepath.Abs(s.opts.SnapshotsDir)
		if rel, err := filepath.Rel(root, path); err != nil || strings.HasPrefix(rel, "..") {
			return "", nil, badRequest(fmt.Sprintf("Wrong input: Snapshot file %s must be inside the snapshots directory", path))
		}
		if _, err := os.Stat(path); err != nil {
			return "", nil, status.Errorf(codes.NotFound, "Not found: Snapshot file %s not found", path)
		}
		return path, func() {}, nil
	case "http", "https":
		tmp, err := s.fetchRemote(ctx, location, apiKey)
		if err != nil {
			return "", nil, badRequest("Wrong input: " + err.Error())
		}
		return tmp, func() { os.Remove(tmp) }, nil
	}
	return "", nil, badRequest(fmt.Sprintf("Wrong input: unsupported snapshot location scheme %q", u.Scheme))
}

func (s *Server) fetchRemote(ctx context.Context, loc string, apiKey *string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return "", err
	}
	if apiKey != nil {
		req.Header.Set("api-key", *apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("download snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download snapshot %s: HTTP %s", loc, resp.Status)
	}
	f, err := os.CreateTemp(s.opts.SnapshotsDir, ".recover-*.snapshot")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		os.Remove(f.Name())
		return "", errors.New("download snapshot: " + err.Error())
	}
	return f.Name(), nil
}
