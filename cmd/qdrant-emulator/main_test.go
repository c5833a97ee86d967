package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
)

// TestBinary starts the real binary as the checking harness does: ready
// line, auth, SIGTERM exit 0.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "qdrant-emulator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	snaps := t.TempDir()
	cmd := exec.Command(bin, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-key", "K", "--snapshots-dir", snaps)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^ready grpc=(127\.0\.0\.1:(\d+)) http=(127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(line)
	if m == nil || m[2] == "0" {
		t.Fatalf("ready line %q", line)
	}
	port, _ := strconv.Atoi(m[2])
	c, err := qdrant.NewClient(&qdrant.Config{Host: "127.0.0.1", Port: port, APIKey: "K", SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "x", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	d, err := c.CreateSnapshot(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := filepath.Glob(filepath.Join(snaps, "x", d.GetName())); len(ok) != 1 {
		t.Fatalf("snapshot not in --snapshots-dir")
	}
	resp, err := http.Get("http://" + m[3] + "/collections")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("REST without key: %v %v", resp, err)
	}
	resp.Body.Close()
	conn, _ := net.Dial("tcp", m[3])
	conn.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "ready") {
		t.Fatal("ready line went to stderr")
	}
}

// --peers N lists N peers on the ready line, in order; every one answers
// for a collection created through the first, with its own cluster view.
func TestBinaryPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "qdrant-emulator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--peers", "3", "--log-level", "warn")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := `127\.0\.0\.1:\d+`
	m := regexp.MustCompile(`^ready grpc=(` + addr + `(?:,` + addr + `){2}) http=(` + addr + `(?:,` + addr + `){2})\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("ready line %q", line)
	}
	https := strings.Split(m[2], ",")
	_, gport, _ := strings.Cut(strings.Split(m[1], ",")[0], ":")
	port, _ := strconv.Atoi(gport)
	c, err := qdrant.NewClient(&qdrant.Config{Host: "127.0.0.1", Port: port, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "x", ShardNumber: qdrant.PtrOf(uint32(3)), VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	for i, h := range https {
		resp, err := http.Get("http://" + h + "/collections/x/cluster")
		if err != nil {
			t.Fatal(err)
		}
		var ci struct {
			Result struct {
				Local []struct {
					ShardID int `json:"shard_id"`
				} `json:"local_shards"`
			} `json:"result"`
		}
		json.NewDecoder(resp.Body).Decode(&ci)
		resp.Body.Close()
		if len(ci.Result.Local) != 1 || ci.Result.Local[0].ShardID != i {
			t.Fatalf("peer %d: local shards %+v", i, ci.Result.Local)
		}
	}
}
