package qdrantemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/internal/qdrantemu"
)

func clusterClients(t *testing.T, n int) ([]*qdrantemu.Server, []*qdrant.Client) {
	t.Helper()
	peers, err := qdrantemu.StartCluster(n, qdrantemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var cs []*qdrant.Client
	for _, p := range peers {
		t.Cleanup(func() { p.Close() })
		host, port, _ := net.SplitHostPort(p.GRPCAddr())
		pn, _ := strconv.Atoi(port)
		c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: pn, SkipCompatibilityCheck: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return peers, cs
}

func restJSON(t *testing.T, method, url string, body io.Reader, ctype string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func download(t *testing.T, url, to string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", url, err, resp)
	}
	defer resp.Body.Close()
	f, _ := os.Create(to)
	io.Copy(f, resp.Body)
	f.Close()
}

func uploadTo(t *testing.T, url, file string) (int, map[string]any) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	part, _ := mw.CreateFormFile("snapshot", filepath.Base(file))
	data, _ := os.ReadFile(file)
	part.Write(data)
	mw.Close()
	return restJSON(t, http.MethodPost, url, &b, mw.FormDataContentType())
}

// Three peers, a collection of six shards: any peer takes any request;
// each peer's cluster info lists its two local shards and four remote
// ones; a peer's collection snapshot holds only its local shards (the
// pitfall), while the six shard snapshots, each taken on its own peer,
// restore every point into a fresh cluster.
func TestClusterMode(t *testing.T) {
	peers, cs := clusterClients(t, 3)
	ctx := context.Background()
	if err := cs[0].CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c", ShardNumber: qdrant.PtrOf(uint32(6)),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	var pts []*qdrant.PointStruct
	for i := 0; i < 600; i++ {
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectors(float32(i), 1), Payload: qdrant.NewValueMap(map[string]any{"i": i})})
	}
	if _, err := cs[1].Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: pts}); err != nil {
		t.Fatal(err)
	}
	total := uint64(0)
	for i, c := range cs {
		n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
		if err != nil || n != 600 {
			t.Fatalf("peer %d counts %d (%v)", i, n, err)
		}
		ci, err := c.GetCollectionClusterInfo(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if len(ci.GetLocalShards()) != 2 || len(ci.GetRemoteShards()) != 4 || ci.GetPeerId() != peers[i].PeerID() {
			t.Fatalf("peer %d: %v", i, ci)
		}
		for _, l := range ci.GetLocalShards() {
			if int(l.GetShardId())%3 != i {
				t.Fatalf("peer %d holds shard %d", i, l.GetShardId())
			}
			total += l.GetPointsCount()
		}
	}
	if total != 600 {
		t.Fatalf("local shards hold %d points in all", total)
	}
	code, m := restJSON(t, http.MethodGet, peers[2].URL()+"/collections/c/cluster", nil, "")
	if res := m["result"].(map[string]any); code != 200 || len(res["local_shards"].([]any)) != 2 || len(res["remote_shards"].([]any)) != 4 {
		t.Fatalf("REST cluster info: %d %v", code, m)
	}

	// The pitfall: peer 0's collection snapshot, restored alone, holds
	// only peer 0's shards.
	d, err := cs[0].CreateSnapshot(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "peer0.snapshot")
	download(t, peers[0].URL()+"/collections/c/snapshots/"+d.GetName(), f)
	single, err := qdrantemu.Start("127.0.0.1:0", "127.0.0.1:0", qdrantemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	uploadTo(t, single.URL()+"/collections/c/snapshots/upload", f)
	_, m = restJSON(t, http.MethodPost, single.URL()+"/collections/c/points/count", bytes.NewReader([]byte(`{"exact":true}`)), "application/json")
	got := m["result"].(map[string]any)["count"].(float64)
	if got == 0 || got >= 600 {
		t.Fatalf("peer 0's snapshot restores %v points; it should hold only its two shards", got)
	}

	// Shard snapshots are answered by the shard's peer only.
	if code, m := restJSON(t, http.MethodPost, peers[0].URL()+"/collections/c/shards/4/snapshots", nil, ""); code != 400 || m["status"].(map[string]any)["error"] != "Wrong input: Shard 4 is not a local shard" {
		t.Fatalf("shard 4 on peer 0: %d %v", code, m)
	}
	if code, m := restJSON(t, http.MethodPost, peers[0].URL()+"/collections/c/shards/9/snapshots", nil, ""); code != 404 || m["status"].(map[string]any)["error"] != "Not found: shard 9" {
		t.Fatalf("shard 9: %d %v", code, m)
	}
	// Every shard from its peer, restored into a fresh 3-peer cluster.
	fresh, fcs := clusterClients(t, 3)
	if err := fcs[2].CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c", ShardNumber: qdrant.PtrOf(uint32(6)),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 6; k++ {
		p := peers[k%3]
		code, m := restJSON(t, http.MethodPost, fmt.Sprintf("%s/collections/c/shards/%d/snapshots", p.URL(), k), nil, "")
		if code != 200 {
			t.Fatalf("shard %d snapshot: %d %v", k, code, m)
		}
		name := m["result"].(map[string]any)["name"].(string)
		sf := filepath.Join(dir, name)
		download(t, fmt.Sprintf("%s/collections/c/shards/%d/snapshots/%s", p.URL(), k, name), sf)
		if code, m := uploadTo(t, fmt.Sprintf("%s/collections/c/shards/%d/snapshots/upload", fresh[k%3].URL(), k), sf); code != 200 {
			t.Fatalf("upload shard %d: %d %v", k, code, m)
		}
	}
	n, err := fcs[0].Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if err != nil || n != 600 {
		t.Fatalf("fresh cluster holds %d points (%v)", n, err)
	}
}

// Shard recover from a URL: the shard's points come back; a wrong checksum
// is refused with Qdrant's message.
func TestShardRecoverFromURL(t *testing.T) {
	peers, cs := clusterClients(t, 2)
	ctx := context.Background()
	if err := cs[0].CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c", ShardNumber: qdrant.PtrOf(uint32(2)),
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	var pts []*qdrant.PointStruct
	for i := 0; i < 100; i++ {
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectors(float32(i), 1)})
	}
	cs[0].Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: pts})
	code, m := restJSON(t, http.MethodPost, peers[1].URL()+"/collections/c/shards/1/snapshots", nil, "")
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	res := m["result"].(map[string]any)
	loc := fmt.Sprintf("%s/collections/c/shards/1/snapshots/%s", peers[1].URL(), res["name"])
	// Points written after the snapshot: recovering shard 1 drops those of
	// shard 1 and keeps those of shard 0.
	var more []*qdrant.PointStruct
	for i := 100; i < 200; i++ {
		more = append(more, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectors(float32(i), 1)})
	}
	cs[0].Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: more})
	before, _ := cs[0].Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	body := fmt.Sprintf(`{"location": %q, "checksum": "%064d"}`, loc, 0)
	if code, m := restJSON(t, http.MethodPut, peers[1].URL()+"/collections/c/shards/1/snapshots/recover", bytes.NewReader([]byte(body)), "application/json"); code != 400 ||
		!bytes.Contains([]byte(m["status"].(map[string]any)["error"].(string)), []byte("Snapshot checksum mismatch")) {
		t.Fatalf("wrong checksum: %d %v", code, m)
	}
	body = fmt.Sprintf(`{"location": %q, "checksum": %q}`, loc, res["checksum"])
	if code, m := restJSON(t, http.MethodPut, peers[1].URL()+"/collections/c/shards/1/snapshots/recover", bytes.NewReader([]byte(body)), "application/json"); code != 200 {
		t.Fatalf("recover: %d %v", code, m)
	}
	after, _ := cs[0].Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if before != 200 || after <= 100 || after >= 200 {
		t.Fatalf("count %d -> %d: shard 1's later points should be gone, shard 0's kept", before, after)
	}
	if code, _ := restJSON(t, http.MethodPut, peers[0].URL()+"/collections/c/shards/1/snapshots/recover", bytes.NewReader([]byte(body)), "application/json"); code != 400 {
		t.Fatalf("recover on the wrong peer: %d", code)
	}
}
