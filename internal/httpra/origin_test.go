package httpra

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Range reads follow a redirect to a CDN on another origin without the
// credentials (a bearer token, an api-key). Before the fix the CDN got
// both on the HEAD and on every GET.
func TestRangeReadsDropCredentialsAcrossOrigins(t *testing.T) {
	body := make([]byte, 10000)
	for i := range body {
		body[i] = byte(i)
	}
	var mu sync.Mutex
	var leaked []string
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		for _, h := range []string{"Authorization", "Api-Key"} {
			if v := r.Header.Get(h); v != "" {
				leaked = append(leaked, fmt.Sprintf("%s %s: %s", r.Method, h, v))
			}
		}
		mu.Unlock()
		w.Header().Set("ETag", `"e"`)
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(body))
	}))
	defer cdn.Close()
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hf_secret" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, cdn.URL+"/f", http.StatusFound)
	}))
	defer hub.Close()
	hdr := http.Header{"Authorization": {"Bearer hf_secret"}, "Api-Key": {"k"}}
	ra, err := Open(context.Background(), http.DefaultClient, hub.URL+"/resolve/main/f", hdr, 1024)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := ra.ReadAt(buf, 5000); err != nil || buf[0] != body[5000] {
		t.Fatalf("read: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) != 0 {
		t.Fatalf("the CDN got credentials: %v", leaked)
	}
}
