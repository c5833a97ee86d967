// Package qrest makes one Qdrant REST call: it sends the request through a
// client that keeps credentials on their origin, decodes Qdrant's envelope
// ({"result": ..., "status": ...}) into out, and turns an error answer into
// an httpget.StatusError carrying Qdrant's status.error message (with the
// server's Retry-After as the wait), so the shared retry policy can
// classify it.
package qrest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/retry"
)

// MaxBody bounds the answer read.
const MaxBody = 16 << 20

// Do sends req and decodes the result into out (nil: ignore it).
func Do(c *http.Client, req *http.Request, out any) error {
	resp, err := httpget.OriginOnly(c).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, httpget.Redact(req.URL.String()), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if resp.StatusCode/100 != 2 {
		var qe struct {
			Status struct {
				Error string `json:"error"`
			} `json:"status"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &qe) == nil && qe.Status.Error != "" {
			msg = qe.Status.Error
		}
		var e error = &httpget.StatusError{URL: httpget.Redact(req.URL.String()), Status: resp.Status + ": " + msg, Code: resp.StatusCode}
		if d, ok := httpget.RetryAfter(resp.Header); ok {
			e = retry.After(e, d)
		}
		return e
	}
	if out == nil {
		return nil
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, httpget.Redact(req.URL.String()), err)
	}
	return json.Unmarshal(env.Result, out)
}
