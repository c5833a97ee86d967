package httpget

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recorder serves a body and records the credential headers it was sent.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rc *recorder) handler(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		for _, h := range CredentialHeaders {
			if v := r.Header.Get(h); v != "" {
				rc.seen = append(rc.seen, h+": "+v)
			}
		}
		rc.mu.Unlock()
		w.Write(body)
	}
}

// Credentials (Qdrant's api-key, a bearer token, basic auth from URL
// userinfo) reach only the origin they were meant for: a redirect to
// another host or port drops them; a redirect on the same origin keeps
// them.
func TestCredentialsStayWithTheirOrigin(t *testing.T) {
	b := body(3000)
	other := &recorder{}
	otherSrv := httptest.NewServer(other.handler(b))
	defer otherSrv.Close()
	home := &recorder{}
	homeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, otherSrv.URL+"/file", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/file", http.StatusFound)
		default:
			home.handler(b)(w, r)
		}
	}))
	defer homeSrv.Close()
	hdr := http.Header{"Api-Key": {"qdrant-secret"}, "Authorization": {"Bearer hf_secret"}}
	for _, path := range []string{"/away", "/here"} {
		dest := filepath.Join(t.TempDir(), "f")
		if _, err := Get(context.Background(), http.DefaultClient, Request{URL: homeSrv.URL + path, Header: hdr, Dest: dest, MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// URL userinfo becomes basic auth for its own origin only.
	u := strings.Replace(homeSrv.URL, "http://", "http://user:pw@", 1)
	if _, err := Get(context.Background(), http.DefaultClient, Request{URL: u + "/away", Dest: filepath.Join(t.TempDir(), "f"), MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.seen) != 0 {
		t.Fatalf("another origin got credentials: %v", other.seen)
	}
	home.mu.Lock()
	defer home.mu.Unlock()
	if got := strings.Join(home.seen, "|"); !strings.Contains(got, "Api-Key: qdrant-secret") || !strings.Contains(got, "Authorization: Bearer hf_secret") {
		t.Fatalf("the same origin lost its credentials: %v", home.seen)
	}
}
