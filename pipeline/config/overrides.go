package config

import (
	"strings"
)

// EnvOverride is a config key that an environment variable can set.
type EnvOverride struct {
	Key string // config key path
	Var string // environment variable
}

// EnvOverrides are the keys with an environment variable. One precedence
// order holds for each, applied once, in Load:
//
//	--set flag > environment > --env-file > the file > the default
//
// (the environment and --env-file are the Lookup, which asks the
// environment first).
var EnvOverrides = []EnvOverride{
	{Key: "qdrant.url", Var: "QDRANT_URL"},
	{Key: "qdrant.api_key", Var: "QDRANT_API_KEY"},
}

// HuggingFace is the hub URL prefix HF_ENDPOINT replaces.
const HuggingFace = "https://huggingface.co"

// setKey is the key path of a --set key.path=value.
func setKey(set string) string {
	k, _, _ := strings.Cut(set, "=")
	return strings.TrimSpace(k)
}

// applyEnvOverrides sets the keys of EnvOverrides from lookup unless a
// --set names them, and moves https://huggingface.co/... sources to
// HF_ENDPOINT (as huggingface_hub does; a source URL given by --set is
// moved too, since the variable names a mirror of the hub itself).
func applyEnvOverrides(cfg *Config, lookup Lookup, sets []string) {
	bySet := map[string]bool{}
	for _, s := range sets {
		bySet[setKey(s)] = true
	}
	for _, o := range EnvOverrides {
		if bySet[o.Key] {
			continue
		}
		v, ok := lookup(o.Var)
		if !ok || v == "" {
			continue
		}
		switch o.Key {
		case "qdrant.url":
			cfg.Qdrant.URL = v
		case "qdrant.api_key":
			cfg.Qdrant.APIKey = Secret(v)
		}
	}
	if ep, ok := lookup("HF_ENDPOINT"); ok {
		if ep = strings.TrimRight(ep, "/"); ep != "" {
			for _, src := range cfg.Sources {
				if src != nil && strings.HasPrefix(src.URL, HuggingFace+"/") {
					src.URL = ep + strings.TrimPrefix(src.URL, HuggingFace)
				}
				if src != nil && strings.HasPrefix(src.URL, "hf://") {
					src.HubEndpoint = ep // hf:// resolves and lists through the mirror
				}
			}
		}
	}
}
