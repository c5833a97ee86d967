package httpra

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/httpget"
)

// A URL that answers with a web page (the link of a file's page, such as
// Hugging Face's /blob/ URLs) is said as such — with the URL to use for a
// /blob/ link — by a range reader (HEAD, or a GET that ignores Range) and
// by a download, instead of "no Range support" or a format error.
func TestWebPageInsteadOfTheFile(t *testing.T) {
	page := "<!doctype html><html><body>" + strings.Repeat("x", 4000) + "</body></html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Query().Get("head") == "octet" && r.Method == http.MethodHead {
			w.Header().Set("Content-Type", "application/octet-stream") // only the GET says it
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.Write([]byte(page))
	}))
	defer srv.Close()
	hint := "/resolve/ in place of /blob/"
	for _, c := range []struct {
		path string
		blob bool
	}{
		{"/datasets/o/n/blob/main/data.parquet", true},
		{"/files/emb.npy", false},
		{"/datasets/o/n/blob/main/emb.npy?head=octet", true},
	} {
		_, err := Open(context.Background(), http.DefaultClient, srv.URL+c.path, nil, 1<<10)
		if err == nil {
			r, _ := Open(context.Background(), http.DefaultClient, srv.URL+c.path, nil, 1<<10)
			_, err = r.ReadAt(make([]byte, 8), 0)
		}
		if !errors.Is(err, httpget.ErrWebPage) || strings.Contains(err.Error(), hint) != c.blob || !strings.Contains(err.Error(), "(Content-Type text/html)") {
			t.Errorf("range reader, %s: %v", c.path, err)
		}
		_, err = httpget.Get(context.Background(), http.DefaultClient, httpget.Request{URL: srv.URL + c.path, Dest: filepath.Join(t.TempDir(), "f"), MaxAttempts: 3})
		if !errors.Is(err, httpget.ErrWebPage) || strings.Contains(err.Error(), hint) != c.blob {
			t.Errorf("download, %s: %v", c.path, err)
		}
	}
}
