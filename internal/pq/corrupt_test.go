package pq

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestCorruptParquetSoak (PQ_SOAK=1; make fuzz's companion) corrupts a
// small Parquet file 20 000 ways: no input may hang, panic or allocate
// more than 200 MB. It found parquet-go sizing the footer buffer from the
// trailer before checking it (TestLyingFooterLength).
func TestCorruptParquetSoak(t *testing.T) {
	if os.Getenv("PQ_SOAK") == "" {
		t.Skip()
	}
	good := fuzzSeed(t, 20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := bytes.Clone(good)
		for k := 0; k < 1+r.IntN(4); k++ {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		done := make(chan struct{})
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		go func() {
			defer close(done)
			pf, err := Open(bytes.NewReader(b), int64(len(b)), "x")
			if err != nil {
				return
			}
			for _, sel := range []Selection{{AllPayload: true}, {Vectors: []string{"vec"}, ID: "id", Payload: []string{"name"}}} {
				rd, err := pf.NewReader(sel, 0)
				if err != nil {
					continue
				}
				var row Row
				for j := 0; j < 1000; j++ {
					if rd.Next(&row) != nil {
						break
					}
				}
			}
		}()
		select {
		case <-done:
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.TotalAlloc-ms0.TotalAlloc > 200<<20 {
				os.WriteFile("/tmp/pq-big.bin", b, 0o644)
				t.Fatalf("input %d allocated %d MB", i, (ms.TotalAlloc-ms0.TotalAlloc)>>20)
			}
		case <-time.After(3 * time.Second):
			os.WriteFile("/tmp/pq-hang.bin", b, 0o644)
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			fmt.Println(string(buf[:n]))
			t.Fatalf("input %d hangs", i)
		}
	}
}

// A trailer claiming a 1 GB footer in a 1 KB file is refused before any
// buffer is sized from it (parquet-go allocated the claimed length).
func TestLyingFooterLength(t *testing.T) {
	b := fuzzSeed(t, 5)
	binary.LittleEndian.PutUint32(b[len(b)-8:], 1<<30)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Open(bytes.NewReader(b), int64(len(b)), "lying.parquet")
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "corrupt parquet file: footer of 1073741824 bytes") {
		t.Fatalf("err = %v", err)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Fatalf("allocated %d bytes", a)
	}
	binary.LittleEndian.PutUint32(b[len(b)-8:], 1)
	copy(b[len(b)-4:], "PAR2")
	if _, err := Open(bytes.NewReader(b), int64(len(b)), "x"); err == nil || !strings.Contains(err.Error(), "no PAR1 magic") {
		t.Fatalf("bad magic: %v", err)
	}
}
