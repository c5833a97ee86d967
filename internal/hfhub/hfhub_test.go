package hfhub

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://hub.test/")
	r, err := Parse("hf://datasets/mlfoundations/datacomp_small/meta/*.parquet@v1.0")
	if err != nil || r.Repo != "mlfoundations/datacomp_small" || r.Rev != "v1.0" || r.Path != "meta/*.parquet" || !r.HasGlob() || r.Endpoint != "http://hub.test" {
		t.Fatalf("%+v %v", r, err)
	}
	if got := r.Resolve("meta/a.parquet"); got != "http://hub.test/datasets/mlfoundations/datacomp_small/resolve/v1.0/meta/a.parquet" {
		t.Fatal(got)
	}
	for _, bad := range []string{"hf://models/x/y", "hf://datasets/x", "https://x/y", "hf://datasets/x/y@"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

// The tree API pages (Link rel="next") are all read; a next link to
// another origin is not followed (the token stays with the hub).
func TestListFollowsPagesOnItsOrigin(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("cursor")
		switch page {
		case "":
			w.Header().Set("Link", fmt.Sprintf(`<%s%s?recursive=true&cursor=2>; rel="next"`, srv.URL, r.URL.Path))
			fmt.Fprint(w, `[{"type":"file","path":"a.parquet"},{"type":"directory","path":"sub"},{"type":"file","path":"a.npz"}]`)
		case "2":
			w.Header().Set("Link", `<https://elsewhere.test/api?cursor=3>; rel="next"`)
			fmt.Fprint(w, `[{"type":"file","path":"b.parquet"},{"type":"file","path":"b.npz"},{"type":"file","path":"sub/c.parquet"}]`)
		default:
			t.Errorf("page %q requested", page)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HF_ENDPOINT", srv.URL)
	r, _ := Parse("hf://datasets/o/n/*.parquet")
	files, err := List(context.Background(), srv.Client(), r, "")
	if err != nil || !slices.Equal(files, []string{"a.parquet", "a.npz", "b.parquet", "b.npz", "sub/c.parquet"}) {
		t.Fatalf("%v %v", files, err)
	}
	urls, err := Glob(context.Background(), srv.Client(), r)
	if err != nil || len(urls) != 2 || !strings.HasSuffix(urls[1], "/datasets/o/n/resolve/main/b.parquet") {
		t.Fatalf("glob: %v %v", urls, err)
	}
	r2, _ := Parse("hf://datasets/o/n/*.fvecs")
	if _, err := Glob(context.Background(), srv.Client(), r2); err == nil || !strings.Contains(err.Error(), "matches no file") {
		t.Fatalf("no match: %v", err)
	}
}

func TestGatedMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gated", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_TOKEN", "")
	r, _ := Parse("hf://datasets/o/gated/*.parquet")
	if _, err := List(context.Background(), srv.Client(), r, ""); err == nil || !strings.Contains(err.Error(), "is gated: accept its terms") {
		t.Fatalf("%v", err)
	}
}
