package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errFlaky = errors.New("flaky")

func fast(n int) Policy {
	return Policy{MaxAttempts: n, Initial: time.Microsecond, Max: time.Millisecond}
}

func TestPermanentIsNotRetried(t *testing.T) {
	calls := 0
	bad := errors.New("404")
	err := Do(context.Background(), fast(5), func(int) error { calls++; return Permanent(bad) })
	if calls != 1 || !errors.Is(err, bad) || !IsPermanent(err) {
		t.Fatalf("calls %d err %v", calls, err)
	}
}

func TestTransientIsRetriedUntilTheCap(t *testing.T) {
	var seen []int
	err := Do(context.Background(), fast(4), func(a int) error { seen = append(seen, a); return errFlaky })
	var g *GaveUp
	if !errors.As(err, &g) || g.Attempts != 4 || !errors.Is(err, errFlaky) || len(seen) != 4 || seen[3] != 4 {
		t.Fatalf("err %v seen %v", err, seen)
	}
}

func TestSuccessAfterFailures(t *testing.T) {
	calls := 0
	err := Do(context.Background(), fast(5), func(int) error {
		calls++
		if calls < 3 {
			return errFlaky
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("calls %d err %v", calls, err)
	}
}

func TestServerWaitReplacesTheBackoff(t *testing.T) {
	var waits []time.Duration
	p := fast(3)
	p.Notify = func(_ int, err error, d time.Duration) {
		if !errors.Is(err, errFlaky) {
			t.Errorf("notify got %v", err)
		}
		waits = append(waits, d)
	}
	calls := 0
	Do(context.Background(), p, func(int) error {
		calls++
		if calls == 1 {
			return After(errFlaky, 3*time.Millisecond)
		}
		return errFlaky
	})
	if len(waits) != 2 || waits[0] < 3*time.Millisecond || waits[0] >= 103*time.Millisecond {
		t.Fatalf("waits %v", waits)
	}
}

func TestElapsedCap(t *testing.T) {
	p := Policy{MaxAttempts: 100, MaxElapsed: time.Millisecond, Initial: time.Hour, Max: time.Hour}
	calls := 0
	err := Do(context.Background(), p, func(int) error { calls++; return errFlaky })
	var g *GaveUp
	if !errors.As(err, &g) || calls != 1 {
		t.Fatalf("calls %d err %v", calls, err)
	}
}

func TestCancelStopsTheWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{MaxAttempts: 100, Initial: time.Hour, Max: time.Hour, Notify: func(int, error, time.Duration) { cancel() }}
	err := Do(ctx, p, func(int) error { return errFlaky })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// Backoff waits are jittered and grow up to the cap.
func TestBackoffJitterAndCap(t *testing.T) {
	var waits []time.Duration
	p := Policy{MaxAttempts: 40, Initial: 2 * time.Millisecond, Max: 8 * time.Millisecond,
		Notify: func(_ int, _ error, d time.Duration) { waits = append(waits, d) }}
	Do(context.Background(), p, func(int) error { return errFlaky })
	distinct := map[time.Duration]bool{}
	for i, d := range waits {
		distinct[d] = true
		if d > 12*time.Millisecond || d < time.Millisecond {
			t.Fatalf("wait %d = %v outside [1ms, 12ms]", i, d)
		}
	}
	if len(waits) != 39 || len(distinct) < 5 {
		t.Fatalf("%d waits, %d distinct", len(waits), len(distinct))
	}
}
