package config

import (
	"testing"
)

// FuzzLoad: the loader never panics, and every diagnostic has a position
// inside the file or is a --set/file-level problem.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("version: 1\nname: [x\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("sources: {a: {url: '${X:-http://h/f.npy}'}}\npoints: {id: {column: k}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Load("f.yaml", data, "/", LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
		lines := len(SourceLines(data))
		if ds, ok := err.(Diagnostics); ok {
			for _, d := range ds {
				if d.Message == "" {
					t.Fatalf("empty diagnostic %+v", d)
				}
				switch d.File {
				case "f.yaml":
					if d.Line < 1 || d.Line > lines || d.Column < 1 {
						t.Fatalf("diagnostic outside the file (%d lines): %+v", lines, d)
					}
				case "--set":
				default:
					t.Fatalf("diagnostic names file %q: %+v", d.File, d)
				}
			}
		}
	})
}
