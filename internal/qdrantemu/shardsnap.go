package qdrantemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Shard snapshots: snapshots/{c}/shards/{id}/{c}-shard-{id}-{ts}.snapshot,
// answered only by the peer holding the shard.

func (s *Server) shardDir(c string, id uint32) string {
	return filepath.Join(s.opts.SnapshotsDir, c, "shards", fmt.Sprint(id))
}

// shardOfRequest resolves {c} and {id} and checks the shard is local.
func (s *Server) shardOfRequest(r *http.Request) (*collection, uint32, error) {
	col, err := s.get(r.PathValue("c"))
	if err != nil {
		return nil, 0, err
	}
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		return nil, 0, badRequest(fmt.Sprintf("Wrong input: invalid shard id %q", r.PathValue("id")))
	}
	if err := s.localShard(col, uint32(id)); err != nil {
		return nil, 0, err
	}
	return col, uint32(id), nil
}

func (s *Server) restShardSnapshotCreate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	col, id, err := s.shardOfRequest(r)
	if err != nil {
		fail(w, start, err)
		return
	}
	dir := s.shardDir(col.name, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(w, start, err)
		return
	}
	snap := col.captureShards(map[uint32]bool{id: true})
	name := s.reserveShardSnapshotName(col.name, id, dir)
	s.record(Op{At: start, Kind: "shard-snapshot", Collection: col.name, Shard: int(id)})
	d, err := s.writeInBackground(r.Context(), snap, dir, name, "")
	switch {
	case r.Context().Err() != nil:
		// The client gave up; the snapshot is still written, as in Qdrant.
	case err != nil:
		fail(w, start, err)
	default:
		ok(w, start, d.restJSON())
	}
}

func (s *Server) reserveShardSnapshotName(c string, id uint32, dir string) string {
	return s.reserveName(dir, fmt.Sprintf("%s-shard-%d-", c, id))
}

func (s *Server) restShardSnapshotList(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	col, id, err := s.shardOfRequest(r)
	if err != nil {
		fail(w, start, err)
		return
	}
	dir := s.shardDir(col.name, id)
	ents, _ := os.ReadDir(dir)
	out := []map[string]any{}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".snapshot") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		if d, err := describe(dir, n); err == nil {
			out = append(out, d.restJSON())
		}
	}
	ok(w, start, out)
}

func (s *Server) shardSnapshotPath(r *http.Request) (string, error) {
	col, id, err := s.shardOfRequest(r)
	if err != nil {
		return "", err
	}
	name := r.PathValue("name")
	if !validSnapshotName(name) {
		return "", status.Errorf(codes.NotFound, "Not found: Snapshot %s not found", name)
	}
	p := filepath.Join(s.shardDir(col.name, id), name)
	if _, err := os.Stat(p); err != nil {
		return "", status.Errorf(codes.NotFound, "Not found: Snapshot %s not found", name)
	}
	return p, nil
}

func (s *Server) restShardSnapshotDownload(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, err := s.shardSnapshotPath(r)
	if err != nil {
		fail(w, start, err)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		fail(w, start, err)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	w.Header().Set("Content-Type", "application/octet-stream")
	s.faultMu.Lock()
	rate, limit := s.faults.DownloadRate, s.faults.TruncateDownloadAfter
	s.faultMu.Unlock()
	var rw http.ResponseWriter = w
	if rate > 0 {
		rw = &throttledWriter{ResponseWriter: w, rate: rate}
	}
	if limit > 0 {
		rw = &truncatingWriter{ResponseWriter: w, left: limit}
	}
	s.record(Op{At: start, Kind: "shard-download", Collection: r.PathValue("c")})
	http.ServeContent(rw, r, fi.Name(), fi.ModTime(), f)
}

func (s *Server) restShardSnapshotDelete(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, err := s.shardSnapshotPath(r)
	if err != nil {
		fail(w, start, err)
		return
	}
	os.Remove(p + ".checksum")
	if err := os.Remove(p); err != nil {
		fail(w, start, err)
		return
	}
	ok(w, start, true)
}

// restShardSnapshotRecover is PUT /collections/{c}/shards/{id}/snapshots/
// recover {location, priority, checksum, api_key}: the shard's points are
// replaced with those of the snapshot at location (http(s), or a file in
// this peer's snapshots directory).
func (s *Server) restShardSnapshotRecover(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	col, id, err := s.shardOfRequest(r)
	if err != nil {
		fail(w, start, err)
		return
	}
	var body struct {
		Location string  `json:"location"`
		Priority string  `json:"priority"`
		Checksum string  `json:"checksum"`
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
	path, cleanup, err := s.snapshotLocation(r.Context(), body.Location, body.APIKey)
	if err != nil {
		fail(w, start, err)
		return
	}
	defer cleanup()
	if err := s.replaceShardFrom(col, id, path, body.Checksum); err != nil {
		fail(w, start, err)
		return
	}
	s.record(Op{At: start, Kind: "shard-recover", Collection: col.name, Shard: int(id)})
	ok(w, start, true)
}

// replaceShardFrom verifies a shard snapshot file (checksum when given)
// and replaces the shard's points with its points.
func (s *Server) replaceShardFrom(col *collection, id uint32, path, checksum string) error {
	if cs := strings.TrimSpace(checksum); cs != "" {
		got, err := fileSHA256(path)
		if err != nil {
			return status.Errorf(codes.Internal, "Service internal error: %v", err)
		}
		if !strings.EqualFold(cs, got) {
			return status.Errorf(codes.InvalidArgument, "Wrong input: Snapshot checksum mismatch: expected %s, got %s", cs, got)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return status.Errorf(codes.Internal, "Service internal error: %v", err)
	}
	src, err := readArchive(f, col.name, s.opts.Discard)
	f.Close()
	if err != nil {
		return badRequest(fmt.Sprintf("Wrong input: Failed to read snapshot: %v", err))
	}
	s.replaceShards(col, src, map[uint32]bool{id: true})
	return nil
}

// restShardSnapshotUpload replaces the shard's points with the uploaded
// shard snapshot's (checksum verified when given).
func (s *Server) restShardSnapshotUpload(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	col, id, err := s.shardOfRequest(r)
	if err != nil {
		fail(w, start, err)
		return
	}
	tmp, ok1 := s.receiveUpload(w, r, start)
	if !ok1 {
		return
	}
	defer os.Remove(tmp)
	if err := s.replaceShardFrom(col, id, tmp, r.URL.Query().Get("checksum")); err != nil {
		fail(w, start, err)
		return
	}
	s.record(Op{At: start, Kind: "shard-upload", Collection: col.name, Shard: int(id)})
	ok(w, start, true)
}
