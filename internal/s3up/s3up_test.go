package s3up

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// HeadBucket's HTTP failures read as what they mean; the 404 and no-
// credentials cases are also checked against a real S3 server in
// e2e/s3_test.go (a server that enforces neither 403 nor regions is what
// the tests start, so those two are checked on the error values here).
func TestExplainBucketError(t *testing.T) {
	status := func(code int) error {
		re := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("api error")}}
		return fmt.Errorf("operation error S3: HeadBucket, %w", re)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{status(404), "does not exist at this endpoint (HTTP 404)"},
		{status(403), "access denied (HTTP 403)"},
		{status(301), "is in another region (HTTP 301): set snapshot.s3.region or AWS_REGION"},
		{status(500), "operation error S3: HeadBucket"},
		{errors.New("operation error S3: HeadBucket, get identity: get credentials: failed to refresh cached credentials"), "no AWS credentials found"},
	} {
		if got := Explain(c.err).Error(); !strings.Contains(got, c.want) {
			t.Errorf("%v: %q, want %q", c.err, got, c.want)
		}
	}
}
