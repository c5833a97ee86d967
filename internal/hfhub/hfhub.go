// Package hfhub names and lists files of Hugging Face dataset repositories:
// hf://datasets/OWNER/NAME[/PATH][@REVISION] references, their resolve
// URLs, and the repository tree (paginated), through HF_ENDPOINT with
// HF_TOKEN sent only to that origin.
package hfhub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/snappipe/snappipe/internal/httpget"
)

// Ref is a parsed hf:// reference.
type Ref struct {
	Endpoint string // https://huggingface.co or HF_ENDPOINT
	Repo     string // OWNER/NAME
	Rev      string // main unless @REVISION
	Path     string // inside the repo; may be empty or hold a glob
}

// IsRef reports whether s is an hf:// reference.
func IsRef(s string) bool { return strings.HasPrefix(s, "hf://") }

// Parse reads hf://datasets/OWNER/NAME[/PATH][@REVISION], with the
// endpoint from the environment (HF_ENDPOINT).
func Parse(s string) (Ref, error) { return ParseWith(s, Endpoint()) }

// ParseWith is Parse with the hub's endpoint given ("" for
// https://huggingface.co): a pipeline file takes it from its own variable
// lookup, as it does every variable.
func ParseWith(s, endpoint string) (Ref, error) {
	if endpoint = strings.TrimRight(endpoint, "/"); endpoint == "" {
		endpoint = DefaultEndpoint
	}
	rest, ok := strings.CutPrefix(s, "hf://")
	if !ok {
		return Ref{}, fmt.Errorf("%s: not an hf:// reference", s)
	}
	rev := "main"
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest, rev = rest[:i], rest[i+1:]
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 3 || parts[0] != "datasets" || parts[1] == "" || parts[2] == "" || rev == "" {
		return Ref{}, fmt.Errorf("%s: expected hf://datasets/OWNER/NAME[/PATH][@REVISION]", s)
	}
	return Ref{Endpoint: endpoint, Repo: parts[1] + "/" + parts[2], Rev: rev, Path: strings.Join(parts[3:], "/")}, nil
}

// DefaultEndpoint is the Hugging Face Hub.
const DefaultEndpoint = "https://huggingface.co"

// Endpoint is HF_ENDPOINT, or https://huggingface.co.
func Endpoint() string {
	if e := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/"); e != "" {
		return e
	}
	return DefaultEndpoint
}

// Resolve is the download URL of a file of the repo.
func (r Ref) Resolve(p string) string {
	return fmt.Sprintf("%s/datasets/%s/resolve/%s/%s", r.Endpoint, r.Repo, url.PathEscape(r.Rev), p)
}

// HasGlob reports whether the reference's path holds glob characters.
func (r Ref) HasGlob() bool { return strings.ContainsAny(r.Path, "*?[") }

// MaxEntries bounds a listing (every page together).
const MaxEntries = 1_000_000

// List returns the paths of the files under sub (recursively), following
// the API's pagination (Link: rel="next"). Gated, disabled and missing
// repositories get a message saying what to do.
func List(ctx context.Context, c *http.Client, r Ref, sub string) ([]string, error) {
	api := fmt.Sprintf("%s/api/datasets/%s/tree/%s", r.Endpoint, r.Repo, url.PathEscape(r.Rev))
	if sub != "" {
		api += "/" + sub
	}
	api += "?recursive=true"
	var out []string
	for next := api; next != ""; {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range httpget.HFAuth() {
			req.Header[k] = v
		}
		resp, err := httpget.OriginOnly(c).Do(req)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", r.Repo, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err := statusError(r, sub, resp, body); err != nil {
			return nil, err
		}
		var entries []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		}
		if err := json.Unmarshal(body, &entries); err != nil {
			return nil, fmt.Errorf("list %s: %w", r.Repo, err)
		}
		for _, e := range entries {
			if e.Type == "file" {
				out = append(out, e.Path)
			}
		}
		if len(out) > MaxEntries {
			return nil, fmt.Errorf("list %s: more than %d files", r.Repo, MaxEntries)
		}
		next = nextLink(resp.Header.Get("Link"), next)
	}
	return out, nil
}

var linkRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextLink is the rel="next" URL of a Link header, resolved against the
// current URL and kept on its origin (HF_TOKEN goes nowhere else).
func nextLink(h, cur string) string {
	m := linkRE.FindStringSubmatch(h)
	if m == nil {
		return ""
	}
	base, err := url.Parse(cur)
	if err != nil {
		return ""
	}
	u, err := base.Parse(m[1])
	if err != nil || u.Scheme != base.Scheme || u.Host != base.Host {
		return ""
	}
	return u.String()
}

func statusError(r Ref, sub string, resp *http.Response, body []byte) error {
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden && strings.Contains(strings.ToLower(string(body)), "gated"):
		if os.Getenv("HF_TOKEN") == "" {
			return fmt.Errorf("dataset %s is gated: accept its terms on %s/datasets/%s and set HF_TOKEN to a token of that account", r.Repo, r.Endpoint, r.Repo)
		}
		return fmt.Errorf("dataset %s refuses HF_TOKEN (%s): accept its terms on %s/datasets/%s with the token's account", r.Repo, resp.Status, r.Endpoint, r.Repo)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("access to dataset %s is disabled or forbidden (%s): %s", r.Repo, resp.Status, strings.TrimSpace(string(body)))
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("dataset %s (revision %s, path %q) not found on %s", r.Repo, r.Rev, sub, r.Endpoint)
	}
	return fmt.Errorf("list %s: %s", r.Repo, resp.Status)
}

// Glob lists the files matching the reference's glob (path.Match on the
// whole path; the directory part may not hold glob characters) and
// returns their resolve URLs, sorted.
func Glob(ctx context.Context, c *http.Client, r Ref) ([]string, error) {
	dir := path.Dir(r.Path)
	if strings.ContainsAny(dir, "*?[") {
		return nil, fmt.Errorf("hf://datasets/%s/%s: only the file name may hold a glob", r.Repo, r.Path)
	}
	if dir == "." {
		dir = ""
	}
	files, err := List(ctx, c, r, dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		if ok, err := path.Match(r.Path, f); err != nil {
			return nil, fmt.Errorf("hf://datasets/%s/%s: %w", r.Repo, r.Path, err)
		} else if ok {
			out = append(out, r.Resolve(f))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("hf://datasets/%s/%s@%s matches no file", r.Repo, r.Path, r.Rev)
	}
	return out, nil
}
