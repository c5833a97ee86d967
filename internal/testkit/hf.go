package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ServeHF is a Hugging Face-like hub: the tree API lists a dataset's files,
// resolve/main redirects (302, X-Linked-Size) to a CDN path that serves
// Range requests; a gated dataset answers 401.
func ServeHF(t testing.TB, dir, repo string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/api/datasets/", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/gated/") {
			http.Error(w, `{"error":"Access to dataset owner/gated is restricted. You must have access to it and be authenticated to access it. Please log in."}`, http.StatusUnauthorized)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/api/datasets/"+repo+"/tree/main") {
			http.NotFound(w, r)
			return
		}
		type entry struct {
			Type string `json:"type"`
			Path string `json:"path"`
			Size int64  `json:"size"`
		}
		var out []entry
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				out = append(out, entry{"file", filepath.ToSlash(rel), fi.Size()})
			}
			return nil
		})
		out = append(out, entry{Type: "file", Path: "README.md"})
		json.NewEncoder(w).Encode(out)
	})
	prefix := "/datasets/" + repo + "/resolve/main/"
	mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
		rel := strings.TrimPrefix(r.URL.Path, prefix)
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Linked-Size", fmt.Sprint(fi.Size()))
		http.Redirect(w, r, "/cdn/"+rel, http.StatusFound)
	})
	mux.HandleFunc("/cdn/", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, strings.TrimPrefix(r.URL.Path, "/cdn/")))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
