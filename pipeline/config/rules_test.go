package config

import (
	"strings"
	"testing"
)

// Cross-key rules, each on its own, with the diagnostic at its key.
func TestCrossKeyRules(t *testing.T) {
	base := "version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: Dot } } }\n" +
		"sources: { s: { path: s.npy }, m: { path: m.parquet } }\nsnapshot: { destination: out }\n"
	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct{ points, want string }{
		{"points: { vectors: { w: s } }", `points.vectors.w: vector "w" is not defined under collection.vectors`},
		{"points: { vectors: { v: s }, payload: { source: m, include: [a], exclude: [b] } }", "points.payload.exclude: give include or exclude, not both"},
		{"points: { vectors: { v: s }, id: { column: key } }", "points.id.column: an id column needs points.payload.source"},
		{"points: { vectors: { v: s }, payload: { source: m, include: [a] } }", ""},
		{"points: { vectors: { v: s }, payload: { source: m, exclude: [b] }, id: { column: key } }", ""},
	} {
		cfg, err := Load("p.yaml", []byte(base+tc.points+"\n"), t.TempDir(), LoadOptions{Lookup: none})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.points, err)
		case tc.want == "" && !strings.Contains(strings.Join(UsedSources(cfg), ","), "m"):
			t.Errorf("%s: the payload source is not used: %v", tc.points, UsedSources(cfg))
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.points, err, tc.want)
		}
	}
}

// A URL in a message loses its userinfo and query.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@h/x?token=t": "https://h/x?REDACTED",
		"https://h/x":             "https://h/x",
		"http://[::1:bad":         "(unparseable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	_, err := Load("p.yaml", []byte("version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: Dot } } }\n"+
		"sources: { s: { url: \"ftp://user:pw@h/s.npy?sig=abc\" } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\n"), t.TempDir(), LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err == nil || strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "abc") || !strings.Contains(err.Error(), "ftp://h/s.npy?REDACTED") {
		t.Fatalf("err = %v", err)
	}
}

// --set takes a YAML scalar; anything else is kept as a string. An explicit
// null keeps a non-string key's default and empties a string key.
func TestSetValuesAndNulls(t *testing.T) {
	doc := "version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: Dot } } }\n" +
		"sources: { s: { path: s.npy } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\nupload: { batch_size: ~ }\n"
	none := func(string) (string, bool) { return "", false }
	cfg, err := Load("p.yaml", []byte(doc), t.TempDir(), LoadOptions{Lookup: none, Sets: []string{"collection.name=[a, b]", "qdrant.grpc_port=7000"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Collection.Name != "[a, b]" || cfg.Qdrant.GRPCPort != 7000 || cfg.Upload.BatchSize != 256 {
		t.Fatalf("name %q port %d batch %d", cfg.Collection.Name, cfg.Qdrant.GRPCPort, cfg.Upload.BatchSize)
	}
	if _, err := Load("p.yaml", []byte(strings.Replace(doc, "name: C,", "name: ~,", 1)), t.TempDir(), LoadOptions{Lookup: none}); err == nil || !strings.Contains(err.Error(), "collection.name") {
		t.Fatalf("a null collection name: %v", err)
	}
}

// RedactURL keeps what identifies the file and drops what authorises it.
func TestRedactURLForStorage(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@h/f.npy?token=t&rev=main":                                  "https://h/f.npy?rev=main&token=REDACTED",
		"https://b.s3.amazonaws.com/k?X-Amz-Signature=s&X-Amz-Credential=c&x=1": "https://b.s3.amazonaws.com/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x=1",
		"https://h/f?sig=a&api_key=b&access_token=c&page=2":                     "https://h/f?access_token=REDACTED&api_key=REDACTED&page=2&sig=REDACTED",
		"https://h/f": "https://h/f",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Source and vector names are identifiers: a name that could leave a
// directory ("../x") is refused at its key; a password in qdrant.url never
// shows in a message; QDRANT_URL is validated like the file's value.
func TestNamesAndQdrantURL(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	doc := "version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: Dot } } }\n" +
		"sources: { s: { path: s.npy } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\n"
	for _, tc := range []struct{ from, to, want string }{
		{"sources: { s:", `sources: { "../../escaped":`, `sources.../../escaped: invalid source name "../../escaped"`},
		{"sources: { s:", `sources: { ".hidden":`, `invalid source name ".hidden"`},
		{"vectors: { v:", `vectors: { "a/b":`, `invalid vector name "a/b"`},
	} {
		y := strings.Replace(doc, tc.from, tc.to, 1)
		y = strings.Replace(y, "points: { vectors: { v: s } }", "points: { vectors: {} }", 1)
		_, err := Load("p.yaml", []byte(y), t.TempDir(), LoadOptions{Lookup: none})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.to, err, tc.want)
		}
	}
	env := func(k string) (string, bool) {
		if k == "QDRANT_URL" {
			return "ftp://admin:hunter2@db:6333", true
		}
		return "", false
	}
	_, err := Load("p.yaml", []byte(doc), t.TempDir(), LoadOptions{Lookup: env})
	if err == nil || !strings.Contains(err.Error(), "qdrant.url: invalid URL") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("QDRANT_URL=ftp://…: %v", err)
	}
}

// Multivector and sparse mappings: each rule at its key, all at once.
func TestMultivectorAndSparseRules(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	doc := `version: 1
name: p
collection:
  name: C
  vectors:
    d: { size: 4, distance: Dot }
    colbert: { size: 4, distance: Dot, multivector: { comparator: max_sim } }
    both: { size: 4, distance: Dot }
  sparse_vectors:
    bm25: { modifier: idf }
    both: {}
    Bad/Name: {}
    plain: ~
sources: { s: { path: s.npy }, m: { path: m.parquet } }
points:
  vectors:
    d: { source: m, column: emb, indices: i }
    colbert: s
    bm25: { source: m, column: c }
    plain: { source: s, indices: i, values: v }
    bm26: { source: m, indices: i, values: v }
snapshot: { destination: out }
`
	_, err := Load("p.yaml", []byte(doc), t.TempDir(), LoadOptions{Lookup: none})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`p.yaml:17:43: points.vectors.d.indices: indices is for sparse vectors (collection.sparse_vectors); "d" is a dense vector: use column`,
		`points.vectors.colbert: source "s" is npy; a multivector reads list columns of a table source such as parquet`,
		`points.vectors.bm25.column: "bm25" is a sparse vector: give {source, indices, values} (two list columns), not column`,
		`points.vectors.bm25: "bm25" is a sparse vector: give {source: NAME, indices: COLUMN, values: COLUMN}`,
		`points.vectors.plain.source: source "s" is npy; a sparse vector reads list columns of a table source such as parquet`,
		`points.vectors.bm26: vector "bm26" is not defined under collection.vectors or collection.sparse_vectors; did you mean "bm25"?`,
		`collection.sparse_vectors.both: "both" is both a dense vector (collection.vectors) and a sparse vector`,
		`collection.sparse_vectors.Bad/Name: invalid vector name "Bad/Name"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	ok := `version: 1
name: p
collection:
  name: C
  vectors: { colbert: { size: 4, distance: Dot, multivector: {} } }
  sparse_vectors: { bm25: ~ }
sources: { m: { path: m.parquet } }
points: { vectors: { colbert: { source: m, column: c }, bm25: { source: m, indices: i, values: v } } }
snapshot: { destination: out }
`
	cfg, err := Load("p.yaml", []byte(ok), t.TempDir(), LoadOptions{Lookup: none})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Collection.Vectors["colbert"].Multivector.Comparator != "max_sim" || cfg.Collection.SparseVectors["bm25"] == nil {
		t.Fatalf("defaults: %+v %+v", cfg.Collection.Vectors["colbert"].Multivector, cfg.Collection.SparseVectors)
	}
}

// With strict mode on, a batch larger than upsert_max_batchsize is refused
// when the file is loaded, not by every upsert.
func TestStrictModeBatchSize(t *testing.T) {
	doc := "version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: Dot } }, strict_mode: { enabled: true, upsert_max_batchsize: 100 } }\n" +
		"sources: { s: { path: s.npy } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\n"
	none := func(string) (string, bool) { return "", false }
	_, err := Load("p.yaml", []byte(doc), t.TempDir(), LoadOptions{Lookup: none})
	if err == nil || !strings.Contains(err.Error(), "upload.batch_size: batch_size 256 exceeds collection.strict_mode.upsert_max_batchsize 100") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load("p.yaml", []byte(doc+"upload: { batch_size: 100 }\n"), t.TempDir(), LoadOptions{Lookup: none}); err != nil {
		t.Fatal(err)
	}
}
