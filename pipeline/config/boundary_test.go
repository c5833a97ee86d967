package config

import (
	"fmt"
	"strings"
	"testing"
)

// Every range check at its edges: the last valid value on each side loads,
// the first invalid one is a diagnostic at that key.
func TestValidationBoundaries(t *testing.T) {
	base := func(set string) string {
		return "version: 1\nname: p\nqdrant: { url: \"http://h:6333\" }\n" +
			"collection: { name: C, vectors: { v: { size: 4, distance: Dot } } }\n" +
			"sources: { s: { path: s.npy } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\n"
	}
	for _, tc := range []struct {
		key          string
		valid, wrong []string
	}{
		{"qdrant.grpc_port", []string{"0", "65535"}, []string{"-1", "65536"}},
		{"collection.vectors.v.size", []string{"1", "65536"}, []string{"0", "65537"}},
		{"collection.shard_number", []string{"1"}, []string{"0"}},
		{"collection.replication_factor", []string{"1"}, []string{"0"}},
		{"collection.hnsw.ef_construct", []string{"4"}, []string{"3"}},
		{"points.limit", []string{"1"}, []string{"0", "-1"}},
		{"upload.batch_size", []string{"1", "10000"}, []string{"0", "10001"}},
		{"upload.parallel", []string{"1", "64"}, []string{"0", "65"}},
		{"upload.max_attempts", []string{"1"}, []string{"0"}},
		{"collection.name", []string{strings.Repeat("c", 255)}, []string{strings.Repeat("c", 256), `"a/b"`}},
		{"name", []string{"a.b_c-1"}, []string{`"-x"`, `"a b"`}},
		{"qdrant.url", []string{"https://h", "http://h:1/p"}, []string{"ftp://h", `"http://"`, "h:6333"}},
		{"sources.s.url", []string{"https://h/s.npy"}, []string{"ftp://h/s.npy", "/s.npy"}},
		{"version", []string{"1"}, []string{"2"}},
	} {
		lookup := LoadOptions{Lookup: func(string) (string, bool) { return "", false }}
		for _, v := range tc.valid {
			sets := []string{tc.key + "=" + v}
			if tc.key == "sources.s.url" {
				sets = append(sets, "sources.s.path=")
			}
			if _, err := Load("p.yaml", []byte(base("")), t.TempDir(), LoadOptions{Lookup: lookup.Lookup, Sets: sets}); err != nil {
				t.Errorf("%s=%s refused: %v", tc.key, v, err)
			}
		}
		for _, v := range tc.wrong {
			sets := []string{tc.key + "=" + v}
			if tc.key == "sources.s.url" {
				sets = append(sets, "sources.s.path=")
			}
			_, err := Load("p.yaml", []byte(base("")), t.TempDir(), LoadOptions{Lookup: lookup.Lookup, Sets: sets})
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(": %s: ", tc.key)) {
				t.Errorf("%s=%s: err = %v, want a diagnostic at %s", tc.key, v, err, tc.key)
			}
		}
	}
}
