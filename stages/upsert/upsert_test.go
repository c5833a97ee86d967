package upsert

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snappipe/snappipe/internal/retry"
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
		{status.Error(codes.Aborted, "x"), true},
		{fmt.Errorf("Upsert() failed: %w", status.Error(codes.Unavailable, "x")), true},
		{status.Error(codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: 768, got 512"), false},
		{status.Error(codes.NotFound, "x"), false},
		{status.Error(codes.Unauthenticated, "x"), false},
		{errors.New("not a status"), false},
	} {
		err := classify(tc.err)
		if retry.IsPermanent(err) == tc.retry || !errors.Is(err, tc.err) {
			t.Errorf("%v: classified %v", tc.err, err)
		}
	}
	if classify(nil) != nil {
		t.Error("nil classified as an error")
	}
	d, ok := retry.WaitOf(classify(&qdrant.QdrantResourceExhaustedError{Reason: "r", RetryAfterS: 2}))
	if !ok || d != 2*time.Second {
		t.Errorf("retry-after: %v %v", ok, d)
	}
}
