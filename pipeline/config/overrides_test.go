package config

import (
	"fmt"
	"testing"
)

// The whole precedence table, for every key that has an environment
// variable: --set > environment > --env-file > file > default.
func TestEnvOverridePrecedence(t *testing.T) {
	defaults := map[string]string{"qdrant.url": "http://localhost:6333", "qdrant.api_key": ""}
	get := func(c *Config, key string) string {
		switch key {
		case "qdrant.url":
			return c.Qdrant.URL
		case "qdrant.api_key":
			return c.Qdrant.APIKey.Reveal()
		}
		t.Fatalf("no getter for %s: add one for the new override", key)
		return ""
	}
	for _, o := range EnvOverrides {
		val := func(level string) string { return fmt.Sprintf("http://%s.example:6333", level) }
		levels := []string{"default", "file", "envfile", "environment", "flag"}
		for top := range levels {
			t.Run(o.Key+"/"+levels[top], func(t *testing.T) {
				doc := "version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: Dot } } }\n" +
					"sources: { s: { path: s.npy } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\n"
				files := map[string]string{}
				env := map[string]string{}
				var sets []string
				for l := 1; l <= top; l++ {
					switch levels[l] {
					case "file":
						if o.Key == "qdrant.url" {
							doc += "qdrant: { url: \"" + val("file") + "\" }\n"
						} else {
							doc += "qdrant: { api_key: \"" + val("file") + "\" }\n"
						}
					case "envfile":
						files[o.Var] = val("envfile")
					case "environment":
						env[o.Var] = val("environment")
					case "flag":
						sets = append(sets, o.Key+"="+val("flag"))
					}
				}
				lookup := func(k string) (string, bool) {
					if v, ok := env[k]; ok {
						return v, true
					}
					v, ok := files[k]
					return v, ok
				}
				cfg, err := Load("p.yaml", []byte(doc), t.TempDir(), LoadOptions{Lookup: lookup, Sets: sets})
				if err != nil {
					t.Fatal(err)
				}
				want := defaults[o.Key]
				if top > 0 {
					want = val(levels[top])
				}
				if got := get(cfg, o.Key); got != want {
					t.Fatalf("%s = %q with levels up to %s, want %q", o.Key, got, levels[top], want)
				}
			})
		}
	}
}

// EnvLookup asks the environment before the env files.
func TestEnvLookupOrder(t *testing.T) {
	t.Setenv("SNAPPIPE_T_BOTH", "env")
	l := EnvLookup(map[string]string{"SNAPPIPE_T_BOTH": "file", "SNAPPIPE_T_FILE": "file"})
	if v, _ := l("SNAPPIPE_T_BOTH"); v != "env" {
		t.Fatalf("environment lost to the env file: %q", v)
	}
	if v, ok := l("SNAPPIPE_T_FILE"); v != "file" || !ok {
		t.Fatalf("env file value: %q %v", v, ok)
	}
	if _, ok := l("SNAPPIPE_T_UNSET"); ok {
		t.Fatal("unset variable found")
	}
}
