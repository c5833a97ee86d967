package qdrantemu_test

import (
	"context"
	"errors"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snappipe/snappipe/internal/qdrantemu"
)

func TestAliases(t *testing.T) {
	_, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	for _, n := range []string{"v1", "v2"} {
		if err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: n, VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
			t.Fatal(err)
		}
	}
	c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "v2", Wait: qdrant.PtrOf(true), Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 2)}}})
	if err := c.CreateAlias(ctx, "live", "v1"); err != nil {
		t.Fatal(err)
	}
	count := func(name string) uint64 {
		n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: name, Exact: qdrant.PtrOf(true)})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count("live") != 0 {
		t.Fatal("alias does not resolve to v1")
	}
	// Switching is one create_alias: it overwrites.
	if err := c.CreateAlias(ctx, "live", "v2"); err != nil || count("live") != 1 {
		t.Fatalf("switch: %v", err)
	}
	codeMsg := func(err error, code codes.Code, msg string) {
		t.Helper()
		var se interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &se) || se.GRPCStatus().Code() != code || se.GRPCStatus().Message() != msg {
			t.Errorf("got %v, want %s %q", err, code, msg)
		}
	}
	codeMsg(c.CreateAlias(ctx, "x", "nope"), codes.NotFound, "Not found: Collection `nope` doesn't exist!")
	codeMsg(c.CreateAlias(ctx, "v1", "v2"), codes.AlreadyExists, "Wrong input: Collection `v1` already exists!")
	codeMsg(c.RenameAlias(ctx, "ghost", "y"), codes.NotFound, "Not found: Alias ghost does not exists!")
	if err := c.DeleteAlias(ctx, "ghost"); err != nil {
		t.Fatalf("deleting an unknown alias: %v", err)
	}
	if l, err := c.ListCollectionAliases(ctx, "v2"); err != nil || len(l) != 1 || l[0] != "live" {
		t.Fatalf("aliases of v2: %v %v", l, err)
	}
	// Deleting the collection removes its aliases.
	c.DeleteCollection(ctx, "v2")
	if l, _ := c.ListAliases(ctx); len(l) != 0 {
		t.Fatalf("aliases left: %v", l)
	}
}
