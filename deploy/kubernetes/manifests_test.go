package kubernetes

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/pipeline/config"
)

// strict decodes a manifest into a Kubernetes API type; an unknown or
// misspelt field is an error.
func strict[T any](t *testing.T, file string) *T {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &v
}

func argAfter(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func TestManifestsDecodeStrictly(t *testing.T) {
	cm := strict[corev1.ConfigMap](t, "configmap.yaml")
	sec := strict[corev1.Secret](t, "secret.yaml")
	pvc := strict[corev1.PersistentVolumeClaim](t, "pvc.yaml")
	parts := strict[batchv1.Job](t, "job-partitions.yaml")
	fin := strict[batchv1.Job](t, "job-finalize.yaml")
	if cm.Kind != "ConfigMap" || sec.Kind != "Secret" || pvc.Kind != "PersistentVolumeClaim" || parts.Kind != "Job" || fin.Kind != "Job" {
		t.Fatal("wrong kinds")
	}

	// The partitions: an Indexed Job whose completions are the N of
	// --partition auto/N.
	ps := parts.Spec
	if ps.CompletionMode == nil || *ps.CompletionMode != batchv1.IndexedCompletion || ps.Completions == nil || ps.Parallelism == nil || ps.BackoffLimitPerIndex == nil {
		t.Fatalf("partition job spec: %+v", ps)
	}
	c := ps.Template.Spec.Containers[0]
	p := argAfter(c.Args, "--partition")
	if p != "auto/"+strconv.Itoa(int(*ps.Completions)) {
		t.Fatalf("--partition %q but completions %d", p, *ps.Completions)
	}
	if ps.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Fatal("an Indexed Job with backoffLimitPerIndex needs restartPolicy Never")
	}
	// Finalize: told the same partition count.
	fc := fin.Spec.Template.Spec.Containers[0]
	if !slices.Contains(fc.Args, "--finalize") || argAfter(fc.Args, "--partitions") != strconv.Itoa(int(*ps.Completions)) {
		t.Fatalf("finalize args %v", fc.Args)
	}
	// Every secret and config reference resolves to the shipped objects.
	for _, ctr := range []corev1.Container{c, fc} {
		for _, e := range ctr.Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				if r.SecretKeyRef.Name != sec.Name {
					t.Errorf("%s: secret %q, shipped %q", e.Name, r.SecretKeyRef.Name, sec.Name)
				}
				if _, ok := sec.StringData[r.SecretKeyRef.Key]; !ok {
					t.Errorf("%s: key %q not in the secret", e.Name, r.SecretKeyRef.Key)
				}
			}
		}
		if argAfter(ctr.Args, "apply") != "" && ctr.Args[1] != "/config/pipeline.yaml" {
			t.Errorf("args %v", ctr.Args)
		}
	}
	for _, j := range []*batchv1.Job{parts, fin} {
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name != cm.Name {
				t.Errorf("%s: configmap %q", j.Name, v.ConfigMap.Name)
			}
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != pvc.Name {
				t.Errorf("%s: claim %q", j.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}

	// The pipeline in the ConfigMap validates, with the pods' variables,
	// and suits partitions (a shard set; on_exists: reuse).
	env := map[string]string{}
	for _, e := range c.Env {
		if e.Value != "" {
			env[e.Name] = e.Value
		}
	}
	cfg, err := config.Load("configmap.yaml:pipeline.yaml", []byte(cm.Data["pipeline.yaml"]), "/config", config.LoadOptions{Lookup: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("the shipped pipeline does not validate:\n%v", err)
	}
	if cfg.Collection.OnExists != "reuse" || !cfg.Sources["image"].IsShardSet() || !strings.HasPrefix(cfg.Sources["image"].URL, "https://") {
		t.Fatalf("pipeline not fit for partitions: %+v", cfg.Collection)
	}
}
