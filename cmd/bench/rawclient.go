package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/pq"
	"github.com/snappipe/snappipe/internal/qvalue"
	"golang.org/x/sync/errgroup"
)

// rawClient is the reference: points are built before the clock matters
// (a pool of batches from the first rows), then rows/batch upserts go out
// with wait=true from `parallel` workers, ids rewritten per request; then
// the snapshot is created and downloaded with SHA-256, as snappipe does.
func rawClient(args []string) int {
	fs := flag.NewFlagSet("rawclient", flag.ExitOnError)
	grpcPort := fs.Int("grpc-port", 6334, "")
	httpAddr := fs.String("http", "127.0.0.1:6333", "")
	rows := fs.Int("rows", 100000, "")
	batch := fs.Int("batch", 256, "")
	parallel := fs.Int("parallel", 4, "")
	data := fs.String("data", "", "")
	fs.Parse(args)
	if err := raw(*grpcPort, *httpAddr, *rows, *batch, *parallel, *data); err != nil {
		fmt.Fprintln(os.Stderr, "rawclient:", err)
		return 1
	}
	return 0
}

func readNpy(path string, rows int) ([]float32, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h, err := npy.ReadHeader(f)
	if err != nil {
		return nil, 0, err
	}
	out := make([]float32, rows*h.Width())
	return out, h.Width(), npy.NewReader(f, h).ReadRows(0, rows, out)
}

func raw(grpcPort int, httpAddr string, rows, batch, parallel int, data string) error {
	ctx := context.Background()
	poolBatches := parallel * 4
	poolRows := min(rows, poolBatches*batch)
	img, w, err := readNpy(filepath.Join(data, "img_emb_0000.npy"), poolRows)
	if err != nil {
		return err
	}
	txt, _, err := readNpy(filepath.Join(data, "text_emb_0000.npy"), poolRows)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(data, "metadata_0000.parquet"))
	if err != nil {
		return err
	}
	st, _ := f.Stat()
	pf, err := pq.Open(f, st.Size(), "metadata")
	if err != nil {
		return err
	}
	rd, err := pf.NewReader(pq.Selection{AllPayload: true}, 0)
	if err != nil {
		return err
	}
	pool := make([][]*qdrant.PointStruct, 0, poolBatches)
	for b := 0; b*batch < poolRows; b++ {
		var pts []*qdrant.PointStruct
		for i := b * batch; i < min((b+1)*batch, poolRows); i++ {
			var row pq.Row
			if err := rd.Next(&row); err != nil {
				return err
			}
			pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Payload: qvalue.Payload(row.Payload),
				Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{
					"image": qdrant.NewVectorDense(img[i*w : (i+1)*w]), "text": qdrant.NewVectorDense(txt[i*w : (i+1)*w])})})
		}
		pool = append(pool, pts)
	}
	c, err := qdrant.NewClient(&qdrant.Config{Host: "127.0.0.1", Port: grpcPort, SkipCompatibilityCheck: true, PoolSize: uint(min(parallel, 4))})
	if err != nil {
		return err
	}
	defer c.Close()
	c.DeleteCollection(ctx, "raw")
	if err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "raw", VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
		"image": {Size: uint64(w), Distance: qdrant.Distance_Cosine}, "text": {Size: uint64(w), Distance: qdrant.Distance_Cosine}})}); err != nil {
		return err
	}
	nb := (rows + batch - 1) / batch
	next := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(next)
		for b := 0; b < nb; b++ {
			select {
			case next <- b:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	var mu sync.Mutex
	owned := map[int]bool{}
	for wk := 0; wk < parallel; wk++ {
		g.Go(func() error {
			for b := range next {
				// Each worker uses its own pool entries, so rewriting ids
				// never races with a request in flight.
				slot := wk
				for k := 0; ; k++ {
					slot = (wk + k*parallel) % len(pool)
					mu.Lock()
					free := !owned[slot]
					if free {
						owned[slot] = true
					}
					mu.Unlock()
					if free {
						break
					}
				}
				pts := pool[slot]
				n := min(batch, rows-b*batch)
				for i := 0; i < n; i++ {
					pts[i].Id = qdrant.NewIDNum(uint64(b*batch + i))
				}
				wait := true
				_, err := c.Upsert(gctx, &qdrant.UpsertPoints{CollectionName: "raw", Wait: &wait, Points: pts[:n]})
				mu.Lock()
				owned[slot] = false
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	d, err := c.CreateSnapshot(ctx, "raw")
	if err != nil {
		return err
	}
	resp, err := http.Get("http://" + httpAddr + "/collections/raw/snapshots/" + d.GetName())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := os.CreateTemp("", "raw-*.snapshot")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), resp.Body); err != nil {
		return err
	}
	out.Sync()
	out.Close()
	if hex.EncodeToString(h.Sum(nil)) != d.GetChecksum() {
		return fmt.Errorf("snapshot checksum mismatch")
	}
	fmt.Fprintln(os.Stderr, "rawclient: "+strconv.Itoa(rows)+" points")
	return nil
}
