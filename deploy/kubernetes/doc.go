// Package kubernetes holds the manifests that run a shard-set pipeline on
// Kubernetes (an Indexed Job of partitions, then a finalize Job) and the
// test that decodes them strictly with the Kubernetes API types.
package kubernetes
