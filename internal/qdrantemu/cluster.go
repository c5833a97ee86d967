package qdrantemu

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"sync"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Cluster mode (StartCluster, qdrant-emulator --peers N) runs N peers in
// one process. What it emulates, and how:
//
//   - Collections are shared by the peers, so any peer accepts any point or
//     collection request and "routes" it (Qdrant forwards to the shard's
//     peer; the result is the same).
//   - Placement: shard k of a collection lives on peer k mod N (peers in
//     start order). Replication factor 1: one replica per shard.
//   - A point belongs to shard FNV-1a-64(id) mod shard_number, the id as
//     its decimal number or canonical UUID text (Qdrant uses a hash ring;
//     the mapping differs, the property — a fixed shard per id — holds).
//   - GET /cluster, GET /collections/{c}/cluster and CollectionClusterInfo
//     answer as Qdrant: peer_id, local_shards (points_count, state Active),
//     remote_shards (peer_id).
//   - A peer's collection snapshot holds only its local shards (an empty
//     one when it holds none): the pitfall of snapshotting one node.
//   - Shard snapshots (/collections/{c}/shards/{id}/snapshots...: create,
//     list, download, delete, upload with checksum and priority, recover)
//     are answered by the peer holding the shard; another peer answers 400
//     "Wrong input: Shard {id} is not a local shard", an unknown shard 404
//     "Not found: shard {id}" (lib/collection/src/shards/shard_holder).
//
// Not emulated: replicas, shard transfers, resharding, custom sharding
// (shard keys), raft consensus state, peer failures.
type cluster struct {
	mu          *sync.RWMutex
	collections map[string]*collection
	aliases     map[string]string
	peers       []*Server
}

// StartCluster starts n peers on free ports of 127.0.0.1.
func StartCluster(n int, opts Options) ([]*Server, error) {
	if n < 1 {
		return nil, fmt.Errorf("a cluster needs at least one peer")
	}
	cl := &cluster{mu: &sync.RWMutex{}, collections: map[string]*collection{}, aliases: map[string]string{}}
	for i := 0; i < n; i++ {
		o := opts
		o.SnapshotsDir = "" // each peer has its own snapshots directory
		s, err := start("127.0.0.1:0", "127.0.0.1:0", o, cl, i)
		if err != nil {
			for _, p := range cl.peers {
				p.Close()
			}
			return nil, err
		}
		cl.peers = append(cl.peers, s)
	}
	return cl.peers, nil
}

// Peers are the cluster's peers (just this server outside cluster mode).
func (s *Server) Peers() []*Server {
	if s.cluster == nil {
		return []*Server{s}
	}
	return s.cluster.peers
}

func (c *collection) shardNumber() uint32 {
	if n := c.cfg.GetParams().GetShardNumber(); n > 0 {
		return n
	}
	return 1
}

// shardOf is the shard a point belongs to.
func shardOf(k pointKey, shards uint32) uint32 {
	h := fnv.New64a()
	if k.isUUID {
		fmt.Fprint(h, k.uuid)
	} else {
		fmt.Fprint(h, k.num)
	}
	return uint32(h.Sum64() % uint64(shards))
}

// peerOfShard is the peer index holding a shard.
func (s *Server) peerOfShard(shard uint32) int {
	if s.cluster == nil {
		return 0
	}
	return int(shard) % len(s.cluster.peers)
}

// localShards are the shards of a collection this peer holds.
func (s *Server) localShards(c *collection) map[uint32]bool {
	out := map[uint32]bool{}
	for k := uint32(0); k < c.shardNumber(); k++ {
		if s.peerOfShard(k) == s.index {
			out[k] = true
		}
	}
	return out
}

// captureShards captures the points of the given shards only.
func (c *collection) captureShards(keep map[uint32]bool) *capturedCollection {
	cc := c.capture()
	n := c.shardNumber()
	keys, pts := cc.keys[:0:0], cc.points[:0:0]
	for i, k := range cc.keys {
		if keep[shardOf(k, n)] {
			keys = append(keys, k)
			pts = append(pts, cc.points[i])
		}
	}
	cc.keys, cc.points = keys, pts
	return cc
}

// shardCounts counts a collection's points by shard.
func (c *collection) shardCounts() map[uint32]uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := c.shardNumber()
	out := map[uint32]uint64{}
	for k := range c.points {
		out[shardOf(k, n)]++
	}
	return out
}

// clusterInfo is CollectionClusterInfo as this peer sees it.
func (s *Server) clusterInfo(name string) (*qdrant.CollectionClusterInfoResponse, error) {
	col, err := s.get(name)
	if err != nil {
		return nil, err
	}
	counts := col.shardCounts()
	out := &qdrant.CollectionClusterInfoResponse{PeerId: s.peerID, ShardCount: uint64(col.shardNumber())}
	peers := s.Peers()
	for k := uint32(0); k < col.shardNumber(); k++ {
		p := s.peerOfShard(k)
		if p == s.index {
			out.LocalShards = append(out.LocalShards, &qdrant.LocalShardInfo{ShardId: k, PointsCount: counts[k], State: qdrant.ReplicaState_Active})
		} else {
			out.RemoteShards = append(out.RemoteShards, &qdrant.RemoteShardInfo{ShardId: k, PeerId: peers[p].peerID, State: qdrant.ReplicaState_Active})
		}
	}
	return out, nil
}

func (s *Server) restCollectionCluster(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ci, err := s.clusterInfo(r.PathValue("c"))
	if err != nil {
		fail(w, start, err)
		return
	}
	local := []map[string]any{}
	for _, l := range ci.LocalShards {
		local = append(local, map[string]any{"shard_id": l.ShardId, "points_count": l.PointsCount, "state": "Active"})
	}
	remote := []map[string]any{}
	for _, rs := range ci.RemoteShards {
		remote = append(remote, map[string]any{"shard_id": rs.ShardId, "peer_id": rs.PeerId, "state": "Active"})
	}
	ok(w, start, map[string]any{"peer_id": ci.PeerId, "shard_count": ci.ShardCount, "local_shards": local, "remote_shards": remote, "shard_transfers": []any{}})
}

func (s *Server) restCluster(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.cluster == nil {
		ok(w, start, map[string]any{"status": "disabled"})
		return
	}
	peers := map[string]any{}
	for i, p := range s.cluster.peers {
		peers[fmt.Sprint(p.peerID)] = map[string]any{"uri": fmt.Sprintf("http://127.0.0.1:%d/", 6335+i)}
	}
	ok(w, start, map[string]any{"status": "enabled", "peer_id": s.peerID, "peers": peers,
		"raft_info":               map[string]any{"term": 1, "commit": uint64(len(s.cluster.peers)), "pending_operations": 0, "leader": s.cluster.peers[0].peerID, "role": map[bool]string{true: "Leader", false: "Follower"}[s.index == 0], "is_voter": true},
		"consensus_thread_status": map[string]any{"consensus_thread_status": "working", "last_update": time.Now().UTC().Format(time.RFC3339Nano)},
		"message_send_failures":   map[string]any{}})
}

func (c *collectionsService) CollectionClusterInfo(ctx context.Context, r *qdrant.CollectionClusterInfoRequest) (*qdrant.CollectionClusterInfoResponse, error) {
	return c.s.clusterInfo(r.GetCollectionName())
}

// localShard checks that this peer holds shard id of the collection.
func (s *Server) localShard(col *collection, id uint32) error {
	if id >= col.shardNumber() {
		return status.Errorf(codes.NotFound, "Not found: shard %d", id)
	}
	if s.peerOfShard(id) != s.index {
		return status.Errorf(codes.InvalidArgument, "Wrong input: Shard %d is not a local shard", id)
	}
	return nil
}
