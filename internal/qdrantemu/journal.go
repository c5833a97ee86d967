package qdrantemu

import (
	"time"

	"google.golang.org/grpc/codes"
)

// Op is one request the emulator answered, recorded for tests that must
// check what a client did and when (a retry honouring retry-after, HNSW m
// during a bulk load, a collection dropped and created again).
type Op struct {
	At         time.Time
	Kind       string // "create", "delete", "update", "upsert", "snapshot", "download"
	Collection string
	// HNSWM is the collection's hnsw_config.m after the operation (create,
	// update) or while it ran (upsert).
	HNSWM uint64
	// ShardNumber is the collection's shard_number (create).
	ShardNumber uint32
	Points      int  // upsert: points in the request
	Wait        bool // upsert: the wait flag
	Shard       int  // shard-snapshot, shard-upload: the shard id
	Code        codes.Code
}

func (s *Server) record(op Op) {
	if op.At.IsZero() {
		op.At = time.Now()
	}
	s.journalMu.Lock()
	s.journal = append(s.journal, op)
	s.journalMu.Unlock()
}

// Ops returns every recorded operation, oldest first.
func (s *Server) Ops() []Op {
	s.journalMu.Lock()
	defer s.journalMu.Unlock()
	return append([]Op(nil), s.journal...)
}

// OpsOf returns the recorded operations of one kind, oldest first.
func (s *Server) OpsOf(kind string) []Op {
	var out []Op
	for _, o := range s.Ops() {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}
