package upsert

import (
	"fmt"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{status.Error(codes.Unavailable, "x"), true},
		{status.Error(codes.DeadlineExceeded, "x"), true},
		{status.Error(codes.Internal, "x"), true},
		{status.Error(codes.ResourceExhausted, "x"), true},
		{fmt.Errorf("Upsert() failed: %w", status.Error(codes.Unavailable, "x")), true},
		{status.Error(codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: 768, got 512"), false},
		{status.Error(codes.NotFound, "x"), false},
		{status.Error(codes.Unauthenticated, "x"), false},
	} {
		d, retry := retryDelay(tc.err, 1)
		if retry != tc.retry || (retry && (d <= 0 || d > 200e6)) {
			t.Errorf("%v: retry=%v delay=%v", tc.err, retry, d)
		}
	}
	d, retry := retryDelay(&qdrant.QdrantResourceExhaustedError{Reason: "r", RetryAfterS: 2}, 1)
	if !retry || d < 2e9 || d > 2.2e9 {
		t.Errorf("retry-after: %v %v", retry, d)
	}
	// Backoff grows and is capped.
	d, _ = retryDelay(status.Error(codes.Unavailable, "x"), 30)
	if d > 10e9 || d < 5e9 {
		t.Errorf("capped delay %v", d)
	}
}

// Retry delays carry jitter: over many draws some exceed the base, and
// none go below it (retry-after) or past the cap.
func TestRetryJitter(t *testing.T) {
	above := false
	for range 50 {
		d, _ := retryDelay(&qdrant.QdrantResourceExhaustedError{Reason: "r", RetryAfterS: 1}, 1)
		if d < 1e9 || d >= 1.1e9 {
			t.Fatalf("retry-after delay %v", d)
		}
		above = above || d > 1e9
	}
	if !above {
		t.Fatal("no jitter on retry-after delays")
	}
	if jitter(0) != 0 || jitter(-5) != 0 {
		t.Fatal("jitter of a non-positive span")
	}
	spread := map[time.Duration]bool{}
	for range 50 {
		d, _ := retryDelay(status.Error(codes.Unavailable, "x"), 1)
		if d < 50e6 || d >= 100e6 {
			t.Fatalf("first backoff %v outside [50ms, 100ms)", d)
		}
		spread[d] = true
	}
	if len(spread) < 2 {
		t.Fatal("backoff without jitter")
	}
}
