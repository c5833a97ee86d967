package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A Secret shows in no format: %v, %s, %+v, %#v, %q, inside structs and
// as JSON.
func TestSecretInNoFormat(t *testing.T) {
	const key = "k3y-VALUE-123"
	q := QdrantConfig{URL: "http://h:6333", APIKey: Secret(key)}
	for _, f := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x"} {
		for _, v := range []any{Secret(key), q, &q} {
			if out := fmt.Sprintf(f, v); strings.Contains(out, key) || strings.Contains(out, fmt.Sprintf("%x", key)) {
				t.Errorf("%s of %T shows the secret: %s", f, v, out)
			}
		}
	}
	b, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), key) {
		t.Errorf("JSON shows the secret: %s", b)
	}
	if Secret(key).Reveal() != key || Secret("").String() != "" {
		t.Fatal("Reveal/String")
	}
}
