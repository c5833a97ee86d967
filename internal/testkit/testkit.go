// Package testkit holds helpers shared by snappipe's tests: reading source
// files back as the values apply must have written, and comparing vectors
// bit for bit.
package testkit

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/pq"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/qvalue"
	"google.golang.org/protobuf/proto"
)

// NpyRows reads a whole (test-sized) .npy file as float32 rows.
func NpyRows(t testing.TB, path string) [][]float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := npy.ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	flat := make([]float32, h.Rows()*int64(h.Width()))
	if err := npy.NewReader(f, h).ReadRows(0, int(h.Rows()), flat); err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, h.Rows())
	for i := range out {
		out[i] = flat[i*h.Width() : (i+1)*h.Width()]
	}
	return out
}

// ParquetRows reads every row of a Parquet file as payload values.
func ParquetRows(t testing.TB, path string) []map[string]*qdrant.Value {
	t.Helper()
	var out []map[string]*qdrant.Value
	parquetEach(t, path, pq.Selection{AllPayload: true}, func(p map[string]any) { out = append(out, qvalue.Payload(p)) })
	return out
}

// parquetEach calls f with every row's payload of sel.
func parquetEach(t testing.TB, path string, sel pq.Selection, f func(map[string]any)) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	pf, err := pq.Open(fh, st.Size(), path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pf.NewReader(sel, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		var row pq.Row
		if err := r.Next(&row); err == io.EOF {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		f(row.Payload)
	}
}

// VectorOf returns a retrieved point's named dense vector (new or
// deprecated field).
func VectorOf(p *qdrant.RetrievedPoint, name string) []float32 {
	v := p.GetVectors().GetVectors().GetVectors()[name]
	if d := v.GetDense(); d != nil {
		return d.GetData()
	}
	return v.GetData()
}

// EqualF32 compares bit patterns.
func EqualF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// Emulator starts an in-process Qdrant emulator on free loopback ports and
// a go-client connected to it over real gRPC; both stop with the test.
func Emulator(t testing.TB, opts qdrantemu.Options) (*qdrantemu.Server, *qdrant.Client) {
	t.Helper()
	srv, err := qdrantemu.Start("127.0.0.1:0", "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	host, port, _ := net.SplitHostPort(srv.GRPCAddr())
	p, _ := strconv.Atoi(port)
	c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: p, APIKey: opts.APIKey, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

// GRPCPort is the emulator's gRPC port, as text.
func GRPCPort(srv *qdrantemu.Server) string {
	_, port, _ := net.SplitHostPort(srv.GRPCAddr())
	return port
}

// EmulatorEnv starts an emulator and points QDRANT_URL and
// QDRANT_GRPC_PORT at it for the rest of the test.
func EmulatorEnv(t *testing.T, opts qdrantemu.Options) *qdrantemu.Server {
	t.Helper()
	srv, _ := Emulator(t, opts)
	t.Setenv("QDRANT_URL", srv.URL())
	t.Setenv("QDRANT_GRPC_PORT", GRPCPort(srv))
	return srv
}

// RecoverSnapshot uploads a snapshot file to a server's REST API
// (POST /collections/{name}/snapshots/upload, multipart field "snapshot"),
// as a user restoring it elsewhere would, and fails the test on any error.
func RecoverSnapshot(t testing.TB, restURL, apiKey, name, path string) {
	t.Helper()
	uploadTo(t, strings.TrimRight(restURL, "/")+"/collections/"+url.PathEscape(name)+"/snapshots/upload?priority=snapshot", apiKey, path)
}

// uploadTo posts a snapshot file as multipart/form-data and fails the test
// unless the server answers 200.
func uploadTo(t testing.TB, u, apiKey, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("snapshot", filepath.Base(path))
		if err == nil {
			_, err = io.Copy(part, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequest("POST", u, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if apiKey != "" {
		req.Header.Set("api-key", apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload %s to %s: %s %s", path, u, resp.Status, b)
	}
}

// Files serves dir like a CDN (Range, HEAD, ETag) behind a
// Hugging Face-style /resolve/main/ redirect, and counts body bytes sent.
type Files struct {
	mu       sync.Mutex
	sent     map[string]int64
	reqs     map[string]int // requests of any method, by file name
	auth     []string
	inFlight int
	idle     *sync.Cond
}

// Quiet waits until no request is being served: bytes a client stopped
// reading (a cancelled read-ahead) are counted by then, so a count taken
// after Quiet belongs to what came before.
func (c *Files) Quiet() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.inFlight > 0 {
		c.idle.Wait()
	}
}

// Total is the body bytes sent, over all files.
func (c *Files) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.sent {
		n += v
	}
	return n
}

// Sent is a copy of the body bytes sent, by file name.
func (c *Files) Sent() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.sent)
}

// Auth lists the Authorization headers the hub (/resolve/main/) got.
func (c *Files) Auth() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.auth)
}

// Requests is how many requests (HEAD and GET) named one file.
func (c *Files) Requests(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[name]
}

// Of is the body bytes sent of one file.
func (c *Files) Of(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[name]
}

type countWriter struct {
	http.ResponseWriter
	c    *Files
	name string
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.c.mu.Lock()
	w.c.sent[w.name] += int64(n)
	w.c.mu.Unlock()
	return n, err
}

// ServeFiles starts a Files server for dir; it stops with the test.
func ServeFiles(t testing.TB, dir string) (*Files, string) {
	c := &Files{sent: map[string]int64{}, reqs: map[string]int{}}
	c.idle = sync.NewCond(&c.mu)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.inFlight++
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.inFlight--
			c.idle.Broadcast()
			c.mu.Unlock()
		}()
		if name, ok := strings.CutPrefix(r.URL.Path, "/resolve/main/"); ok {
			c.mu.Lock()
			c.auth = append(c.auth, r.Header.Get("Authorization"))
			c.mu.Unlock()
			http.Redirect(w, r, "/cdn/"+name, http.StatusFound)
			return
		}
		name := filepath.Base(r.URL.Path)
		c.mu.Lock()
		c.reqs[name]++
		c.mu.Unlock()
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, st.Size(), st.ModTime().UnixNano()))
		http.ServeContent(&countWriter{w, c, name}, r, name, st.ModTime(), f)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// ScrollAll reads every point of a collection with payload and vectors.
func ScrollAll(t testing.TB, c *qdrant.Client, name string) []*qdrant.RetrievedPoint {
	t.Helper()
	var out []*qdrant.RetrievedPoint
	var off *qdrant.PointId
	for {
		res, next, err := c.ScrollAndOffset(context.Background(), &qdrant.ScrollPoints{CollectionName: name, Offset: off,
			Limit: qdrant.PtrOf(uint32(256)), WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res...)
		if next == nil {
			return out
		}
		off = next
	}
}

// EqualPayload compares two payloads as protobuf values.
func EqualPayload(a, b map[string]*qdrant.Value) bool {
	return proto.Equal(&qdrant.Struct{Fields: a}, &qdrant.Struct{Fields: b})
}

// Cluster starts an n-peer emulator cluster and a client of its first peer.
func Cluster(t testing.TB, n int, opts qdrantemu.Options) ([]*qdrantemu.Server, *qdrant.Client) {
	t.Helper()
	peers, err := qdrantemu.StartCluster(n, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		t.Cleanup(func() { p.Close() })
	}
	host, port, _ := net.SplitHostPort(peers[0].GRPCAddr())
	pn, _ := strconv.Atoi(port)
	c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: pn, APIKey: opts.APIKey, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return peers, c
}

// UploadShardSnapshot uploads a shard snapshot file to the peer holding
// the shard (POST /collections/{c}/shards/{id}/snapshots/upload).
func UploadShardSnapshot(t testing.TB, restURL, collection string, shard int, path string) {
	t.Helper()
	uploadTo(t, fmt.Sprintf("%s/collections/%s/shards/%d/snapshots/upload?priority=snapshot", strings.TrimRight(restURL, "/"), url.PathEscape(collection), shard), "", path)
}

// SamePoints fails unless two collections hold the same points: ids,
// payloads and every vector (dense, multi-dense, sparse), compared as
// deterministic protobuf bytes.
func SamePoints(t testing.TB, a *qdrant.Client, an string, b *qdrant.Client, bn string) {
	t.Helper()
	sa, sb := ScrollAll(t, a, an), ScrollAll(t, b, bn)
	if len(sa) != len(sb) {
		t.Fatalf("%s has %d points, %s has %d", an, len(sa), bn, len(sb))
	}
	det := proto.MarshalOptions{Deterministic: true}
	for i := range sa {
		x, _ := det.Marshal(sa[i])
		y, _ := det.Marshal(sb[i])
		if !bytes.Equal(x, y) {
			t.Fatalf("point %v differs:\n%v\n%v", sa[i].GetId(), sa[i], sb[i])
		}
	}
}

// NpzRows reads one array of a (test-sized) .npz archive as float32 rows.
func NpzRows(t testing.TB, path, array string) [][]float32 {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name != array+".npy" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(t.TempDir(), array+".npy")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return NpyRows(t, tmp)
	}
	t.Fatalf("%s has no array %s", path, array)
	return nil
}

// ParquetColumn reads one column of a Parquet file as payload values.
func ParquetColumn(t testing.TB, path, column string) []any {
	t.Helper()
	var out []any
	parquetEach(t, path, pq.Selection{Payload: []string{column}}, func(p map[string]any) { out = append(out, p[column]) })
	return out
}
