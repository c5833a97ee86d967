package config

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
)

// FormatInfo is what the config language knows of a source format plugin
// (pipeline.Format adds how to read it): its name, the extensions that
// infer it, whether it is a table, and its own options.
type FormatInfo interface {
	// Name is the value of sources.NAME.format.
	Name() string
	// Extensions are the file name endings that infer this format (".npy").
	Extensions() []string
	// Table formats have named columns (payload, id, vector list columns);
	// the others hold one vector per row (no column).
	Table() bool
	// Options are the keys under sources.NAME this format accepts beyond
	// the common ones (url, path, format, sha256): validated with
	// positions, in the JSON Schema and the README's config reference.
	Options() []FormatOption
}

// FormatOption is one key a format accepts under sources.NAME. Values are
// strings (${VAR} expanded like any value).
type FormatOption struct {
	Key string
	Doc string
}

// formatOptions maps each option key to the formats that declare it.
func formatOptions() map[string][]string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	out := map[string][]string{}
	for _, n := range SortedKeys(formats) {
		for _, o := range formats[n].Options() {
			out[o.Key] = append(out[o.Key], n)
		}
	}
	return out
}

// hasOption reports whether format f declares key.
func hasOption(f FormatInfo, key string) bool {
	for _, o := range f.Options() {
		if o.Key == key {
			return true
		}
	}
	return false
}

var (
	formatsMu sync.RWMutex
	formats   = map[string]FormatInfo{}
)

// RegisterFormat adds a format; a second format of the same name or
// extension panics (a programming error, found at start-up).
func RegisterFormat(f FormatInfo) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	if _, dup := formats[f.Name()]; dup {
		panic(fmt.Sprintf("config: format %q registered twice", f.Name()))
	}
	for _, o := range formats {
		for _, e := range f.Extensions() {
			if slices.Contains(o.Extensions(), e) {
				panic(fmt.Sprintf("config: extension %s claimed by formats %q and %q", e, o.Name(), f.Name()))
			}
		}
	}
	formats[f.Name()] = f
}

// FormatByName returns a registered format, or nil.
func FormatByName(name string) FormatInfo {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	return formats[name]
}

// FormatNames lists the registered formats, sorted.
func FormatNames() []string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	return SortedKeys(formats)
}

// FormatForName infers a format from a file name's extension; nil when no
// registered format claims it.
func FormatForName(file string) FormatInfo {
	ext := strings.ToLower(path.Ext(file))
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	for _, n := range SortedKeys(formats) {
		if slices.Contains(formats[n].Extensions(), ext) {
			return formats[n]
		}
	}
	return nil
}

// formatExtensions lists every claimed extension, for messages.
func formatExtensions() []string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	var out []string
	for _, n := range SortedKeys(formats) {
		out = append(out, formats[n].Extensions()...)
	}
	return out
}
