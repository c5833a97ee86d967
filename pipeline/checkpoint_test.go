package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// readState decodes the file as it is on disk.
func readState(t *testing.T, p string) State {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Updates made side by side share saves (group commit), and each one
// returns only once the file holds its change.
func TestUpdatesSideBySideAreEachSaved(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.state.json")
	sf, _, err := OpenState(p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				key := fmt.Sprintf("src#%d", w*1000+i)
				if err := sf.Update(func(s *State) {
					if s.Downloads == nil {
						s.Downloads = map[string]*DownloadState{}
					}
					s.Downloads[key] = &DownloadState{URL: key, Done: true}
				}); err != nil {
					t.Error(err)
					return
				}
				// What this Update returned for is on disk now.
				if ds := readState(t, p).Downloads[key]; ds == nil || !ds.Done {
					t.Errorf("%s is not in the file after its Update returned", key)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(readState(t, p).Downloads); n != 320 {
		t.Fatalf("the file holds %d of 320 records", n)
	}
}

// A throttled update waits at least saveShare times the last save's
// duration, whatever interval it asks for: a large state cannot make
// saving most of the work. Flush saves what the throttle held back.
func TestThrottledSavesScaleWithTheirCost(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.state.json")
	sf, _, err := OpenState(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.Update(func(s *State) { s.Pipeline = "a" }); err != nil {
		t.Fatal(err)
	}
	sf.mu.Lock()
	sf.cost, sf.last = time.Hour, time.Now().Add(-time.Minute) // as if a save took an hour
	sf.mu.Unlock()
	if err := sf.UpdateThrottled(time.Millisecond, func(s *State) { s.Pipeline = "b" }); err != nil {
		t.Fatal(err)
	}
	if got := readState(t, p).Pipeline; got != "a" {
		t.Fatalf("a throttled update saved (%q) a minute after a save that took an hour", got)
	}
	sf.mu.Lock()
	sf.cost = 0
	sf.mu.Unlock()
	if err := sf.UpdateThrottled(time.Millisecond, func(s *State) { s.Pipeline = "c" }); err != nil {
		t.Fatal(err)
	}
	if got := readState(t, p).Pipeline; got != "c" {
		t.Fatalf("a throttled update a minute after a quick save did not save (%q)", got)
	}
	// Held back by the throttle, then saved by Flush.
	sf.mu.Lock()
	sf.cost = time.Hour
	sf.mu.Unlock()
	if err := sf.UpdateThrottled(time.Millisecond, func(s *State) { s.Pipeline = "d" }); err != nil {
		t.Fatal(err)
	}
	if err := sf.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readState(t, p).Pipeline; got != "d" {
		t.Fatalf("Flush did not save a throttled change (%q)", got)
	}
}
