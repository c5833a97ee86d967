package httpget

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/snappipe/snappipe/internal/retry"
)

// ErrWebPage means a source URL answered with a web page instead of the
// file: most often the link of a file's page (Hugging Face's and GitHub's
// /blob/ URLs) where the file's own URL (/resolve/, raw) was meant.
var ErrWebPage = errors.New("the server sent a web page, not the file")

// WebPageError is ErrWebPage for one URL.
type WebPageError struct {
	URL         string // redacted
	ContentType string
	Blob        bool // a /blob/ page link
}

func (e *WebPageError) Error() string {
	msg := fmt.Sprintf("GET %s: %v (Content-Type %s)", e.URL, ErrWebPage, e.ContentType)
	if e.Blob {
		msg += ": this is the link of the file's page; the file itself is at the same URL with /resolve/ in place of /blob/ on Hugging Face, or on raw.githubusercontent.com for GitHub"
	}
	return msg
}

func (e *WebPageError) Is(target error) bool { return target == ErrWebPage }

// WebPage returns a permanent WebPageError when resp is a successful
// answer holding an HTML page (by its Content-Type: no data format
// snappipe reads is served as HTML); nil for any other response.
func WebPage(resp *http.Response, rawURL string) error {
	if resp.StatusCode/100 != 2 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/html" && mt != "application/xhtml+xml" {
		return nil
	}
	blob := strings.Contains(rawURL, "/blob/") || resp.Request != nil && strings.Contains(resp.Request.URL.Path, "/blob/")
	return retry.Permanent(&WebPageError{URL: Redact(rawURL), ContentType: mt, Blob: blob})
}
