// Package qrestore puts a snapshot into a Qdrant over REST — upload a
// local file (multipart, streamed, with checksum and priority) or have the
// server recover it from a URL — and counts the result exactly. The API key
// goes only to the target's origin.
package qrestore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/snappipe/snappipe/internal/qrest"
	"github.com/snappipe/snappipe/internal/retry"
)

// Target is a Qdrant collection to restore into.
type Target struct {
	URL        string // REST base URL
	APIKey     string
	Collection string
	Priority   string // snapshot | replica | no_sync
	HTTP       *http.Client
	// Progress, if set, is told the bytes of an upload sent so far.
	Progress func(done, total int64)
}

// progressReader reports bytes read.
type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	f     func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.f(p.done, p.total)
	return n, err
}

func (t Target) base() string { return strings.TrimRight(t.URL, "/") }

func (t Target) header(h http.Header) {
	if t.APIKey != "" {
		h.Set("api-key", t.APIKey)
	}
}

func (t Target) priority() string {
	if t.Priority == "" {
		return "snapshot"
	}
	return t.Priority
}

// Upload streams a snapshot file as multipart/form-data to
// POST /collections/{c}/snapshots/upload?priority=&checksum= (never held
// in memory); the server checks the checksum.
func (t Target) Upload(ctx context.Context, path, name, sha string) error {
	return t.upload(ctx, "/collections/"+url.PathEscape(t.Collection)+"/snapshots/upload", path, name, sha)
}

// UploadShard uploads one shard's snapshot to the peer holding the shard
// (POST /collections/{c}/shards/{id}/snapshots/upload).
func (t Target) UploadShard(ctx context.Context, shard uint32, path, name, sha string) error {
	return t.upload(ctx, fmt.Sprintf("/collections/%s/shards/%d/snapshots/upload", url.PathEscape(t.Collection), shard), path, name, sha)
}

// RecoverShard has the peer holding a shard replace it from a URL (a
// presigned S3 URL): PUT /collections/{c}/shards/{id}/snapshots/recover.
func (t Target) RecoverShard(ctx context.Context, shard uint32, location, sha string) error {
	body := map[string]any{"location": location, "priority": t.priority()}
	if sha != "" {
		body["checksum"] = sha
	}
	b, _ := json.Marshal(body)
	u := fmt.Sprintf("%s/collections/%s/shards/%d/snapshots/recover?wait=true", t.base(), url.PathEscape(t.Collection), shard)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader(string(b)))
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	t.header(req.Header)
	return t.do(req)
}

// LocalShards asks the peer which shards of the collection it holds, with
// their points.
func (t Target) LocalShards(ctx context.Context) (map[uint32]uint64, error) {
	var out struct {
		Local []struct {
			ShardID     uint32 `json:"shard_id"`
			PointsCount uint64 `json:"points_count"`
		} `json:"local_shards"`
	}
	if err := t.get(ctx, "/collections/"+url.PathEscape(t.Collection)+"/cluster", &out); err != nil {
		return nil, err
	}
	m := map[uint32]uint64{}
	for _, l := range out.Local {
		m[l.ShardID] = l.PointsCount
	}
	return m, nil
}

func (t Target) upload(ctx context.Context, path0, path, name, sha string) error {
	f, err := os.Open(path)
	if err != nil {
		return retry.Permanent(err)
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("snapshot", name)
		var src io.Reader = f
		if t.Progress != nil {
			total := int64(-1)
			if fi, err := f.Stat(); err == nil {
				total = fi.Size()
			}
			src = &progressReader{r: f, total: total, f: t.Progress}
		}
		if err == nil {
			_, err = io.Copy(part, src)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	q := url.Values{"priority": {t.priority()}, "wait": {"true"}}
	if sha != "" {
		q.Set("checksum", sha)
	}
	u := t.base() + path0 + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, pr)
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	t.header(req.Header)
	return t.do(req)
}

// Recover has the server fetch the snapshot from location (http(s), e.g.
// a presigned S3 URL) with PUT /collections/{c}/snapshots/recover.
func (t Target) Recover(ctx context.Context, location, sha string) error {
	body := map[string]any{"location": location, "priority": t.priority()}
	if sha != "" {
		body["checksum"] = sha
	}
	b, _ := json.Marshal(body)
	u := t.base() + "/collections/" + url.PathEscape(t.Collection) + "/snapshots/recover?wait=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader(string(b)))
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	t.header(req.Header)
	return t.do(req)
}

// do sends a request to the target and reads Qdrant's answer.
func (t Target) do(req *http.Request) error { return qrest.Do(t.http(), req, nil) }

// get decodes GET path's result into out.
func (t Target) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base()+path, nil)
	if err != nil {
		return err
	}
	t.header(req.Header)
	return qrest.Do(t.http(), req, out)
}

func (t Target) http() *http.Client {
	if t.HTTP == nil {
		return http.DefaultClient
	}
	return t.HTTP
}

// Aliases lists the server's aliases: alias -> collection.
func (t Target) Aliases(ctx context.Context) (map[string]string, error) {
	var out struct {
		Aliases []struct {
			Alias      string `json:"alias_name"`
			Collection string `json:"collection_name"`
		} `json:"aliases"`
	}
	if err := t.get(ctx, "/aliases", &out); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, a := range out.Aliases {
		m[a.Alias] = a.Collection
	}
	return m, nil
}

// SwitchAlias points alias at the target collection in one request (one
// create_alias action: Qdrant applies it atomically, readers never see a
// half-switched alias).
func (t Target) SwitchAlias(ctx context.Context, alias string) error {
	b, _ := json.Marshal(map[string]any{"actions": []any{map[string]any{"create_alias": map[string]string{"collection_name": t.Collection, "alias_name": alias}}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base()+"/collections/aliases", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	t.header(req.Header)
	return t.do(req)
}

// DeleteCollection drops a collection on the target.
func (t Target) DeleteCollection(ctx context.Context, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, t.base()+"/collections/"+url.PathEscape(name), nil)
	if err != nil {
		return err
	}
	t.header(req.Header)
	return t.do(req)
}

// Count asks for the collection's exact point count.
func (t Target) Count(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base()+"/collections/"+url.PathEscape(t.Collection)+"/points/count", strings.NewReader(`{"exact":true}`))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	t.header(req.Header)
	var out struct {
		Count int64 `json:"count"`
	}
	if err := qrest.Do(t.http(), req, &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}
