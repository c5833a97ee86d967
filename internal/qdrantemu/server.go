// Package qdrantemu is an in-memory Qdrant emulator: a test double that speaks
// Qdrant's real gRPC protocol (through go-client's generated server stubs) and
// the REST snapshot endpoints, with Qdrant v1.17's error codes and texts.
//
// It exists because no Qdrant server can run where snappipe is built and
// tested. It is not Qdrant: it keeps points in memory, does no vector search,
// and writes snapshots in its own tar format (see snapshot.go), which only
// another emulator can recover.
package qdrantemu

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Version is the Qdrant version the emulator reports.
const Version = "1.17.1"

// Faults are injected failures for resilience tests. The zero value injects
// nothing. Change them while running with Server.SetFaults.
type Faults struct {
	// UpsertDelay delays every upsert before it is applied.
	UpsertDelay time.Duration
	// FailUpserts makes the next N upserts fail with FailCode.
	FailUpserts int
	// FailCode is the gRPC code of injected upsert failures:
	// codes.Unavailable (default), codes.ResourceExhausted or codes.Internal.
	FailCode codes.Code
	// RetryAfter, when > 0, is sent as the "retry-after" trailer (seconds)
	// with ResourceExhausted failures, as Qdrant's rate limiter does.
	RetryAfter int
	// FailRate fails each upsert with this probability (0..1), drawn from a
	// generator seeded with Seed.
	FailRate float64
	Seed     uint64
	// SnapshotDelay makes snapshot creation take this long. Creation goes on
	// in the background even when the caller gives up, as in Qdrant.
	SnapshotDelay time.Duration
	// TruncateDownloadAfter drops the connection of a snapshot download
	// (collection or shard) after this many body bytes (0: never).
	TruncateDownloadAfter int64
	// DownloadRate slows snapshot downloads to this many bytes a second
	// (0: no limit), so a harness can interrupt a transfer mid-way.
	DownloadRate int64
	// CorruptDownloads makes the next N snapshot downloads serve wrong bytes
	// (the first body byte inverted, the length unchanged), so the bytes no
	// longer match the listed checksum.
	CorruptDownloads int
	// AsyncApplyDelay defers applying wait=false upserts by this long, as
	// Qdrant acknowledges them after the WAL append and applies them later.
	// A point written with wait=false is then not visible to Count, Scroll
	// or a snapshot until the delay has passed. 0 applies at once.
	AsyncApplyDelay time.Duration
}

// Options configure a Server.
type Options struct {
	// APIKey, when set, is required on every call except health endpoints.
	APIKey string
	// SnapshotsDir is where snapshot files go. Empty: a temporary directory
	// removed by Close.
	SnapshotsDir string
	// Discard validates and counts upserted points but keeps none, so that
	// large benchmark runs measure the client and do not fill memory.
	Discard bool
	// Sink is a no-op sink for measuring a client's CPU: upserts are
	// counted without decoding their points, so nothing in them is
	// validated, and none is kept (it implies Discard). Every other call
	// behaves as usual.
	Sink bool
	// StrictWait makes wait=false upserts report apply errors instead of
	// dropping them as Qdrant does.
	StrictWait bool
	Faults     Faults
	// Logger receives the emulator's logs; nil discards them.
	Logger *slog.Logger
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	peerID uint64

	grpcLis, httpLis net.Listener
	grpcSrv          *grpc.Server
	httpSrv          *http.Server
	tempDir          string

	// mu guards collections and aliases; cluster peers share all three
	// (any peer accepts any point or collection request).
	mu          *sync.RWMutex
	collections map[string]*collection
	aliases     map[string]string // alias -> collection (guarded by mu)
	// cluster is set in cluster mode (StartCluster); index is this peer's
	// place in it.
	cluster *cluster
	index   int

	faultMu sync.Mutex
	faults  Faults
	rng     *mrand.Rand

	snapMu   sync.Mutex
	reserved map[string]bool // snapshot names being written
	snapWG   sync.WaitGroup

	upsertCalls, upsertPoints uint64 // guarded by faultMu
	snapshotsCreated          uint64 // guarded by snapMu

	journalMu sync.Mutex
	journal   []Op

	deferMu  sync.Mutex
	deferred map[*time.Timer]bool // pending wait=false applies
	closed   bool
}

// Start listens on grpcAddr and httpAddr ("127.0.0.1:0" picks free ports)
// and serves until Close.
func Start(grpcAddr, httpAddr string, opts Options) (*Server, error) {
	return start(grpcAddr, httpAddr, opts, nil, 0)
}

func start(grpcAddr, httpAddr string, opts Options, cl *cluster, index int) (*Server, error) {
	if opts.Sink {
		opts.Discard = true
	}
	s := &Server{opts: opts, mu: &sync.RWMutex{}, collections: map[string]*collection{}, aliases: map[string]string{}, reserved: map[string]bool{}}
	if cl != nil {
		s.mu, s.collections, s.aliases, s.cluster, s.index = cl.mu, cl.collections, cl.aliases, cl, index
	}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	s.peerID = binary.LittleEndian.Uint64(b[:])%(1<<53) + 1
	s.SetFaults(opts.Faults)
	if s.opts.SnapshotsDir == "" {
		d, err := os.MkdirTemp("", "qdrantemu-snapshots-")
		if err != nil {
			return nil, err
		}
		s.tempDir, s.opts.SnapshotsDir = d, d
	} else if err := os.MkdirAll(s.opts.SnapshotsDir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if s.grpcLis, err = net.Listen("tcp", grpcAddr); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("grpc listen %s: %w", grpcAddr, err)
	}
	if s.httpLis, err = net.Listen("tcp", httpAddr); err != nil {
		s.grpcLis.Close()
		s.cleanup()
		return nil, fmt.Errorf("http listen %s: %w", httpAddr, err)
	}
	sopts := []grpc.ServerOption{
		// Qdrant sets no gRPC message limit; grpc-go's default is 4 MiB.
		grpc.MaxRecvMsgSize(math.MaxInt32),
		grpc.MaxSendMsgSize(math.MaxInt32),
		// go-client pings every 10 s with PermitWithoutStream.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.authInterceptor),
	}
	if s.opts.Sink {
		sopts = append(sopts, grpc.ForceServerCodecV2(newSinkCodec()))
	}
	s.grpcSrv = grpc.NewServer(sopts...)
	qdrant.RegisterQdrantServer(s.grpcSrv, &qdrantService{s: s})
	qdrant.RegisterCollectionsServer(s.grpcSrv, &collectionsService{s: s})
	qdrant.RegisterPointsServer(s.grpcSrv, &pointsService{s: s})
	qdrant.RegisterSnapshotsServer(s.grpcSrv, &snapshotsService{s: s})
	s.httpSrv = &http.Server{Handler: s.restHandler(), ReadHeaderTimeout: 10 * time.Second}
	go s.grpcSrv.Serve(s.grpcLis)
	go s.httpSrv.Serve(s.httpLis)
	s.log.Info("qdrant emulator started", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "peer_id", s.peerID, "snapshots_dir", s.opts.SnapshotsDir)
	return s, nil
}

// GRPCAddr is the gRPC listener's host:port.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the REST listener's host:port.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// URL is the REST base URL, e.g. http://127.0.0.1:6333.
func (s *Server) URL() string { return "http://" + s.HTTPAddr() }

// SnapshotsDir is where snapshot files are written.
func (s *Server) SnapshotsDir() string { return s.opts.SnapshotsDir }

// PeerID is this instance's random peer id, part of every snapshot name.
func (s *Server) PeerID() uint64 { return s.peerID }

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if f.FailCode == codes.OK {
		f.FailCode = codes.Unavailable
	}
	s.faults = f
	s.rng = mrand.New(mrand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
}

// Stats are counters for tests.
type Stats struct {
	UpsertCalls, UpsertPoints, SnapshotsCreated uint64
}

// Stats returns counters of what the emulator was asked to do.
func (s *Server) Stats() Stats {
	s.faultMu.Lock()
	st := Stats{UpsertCalls: s.upsertCalls, UpsertPoints: s.upsertPoints}
	s.faultMu.Unlock()
	s.snapMu.Lock()
	st.SnapshotsCreated = s.snapshotsCreated
	s.snapMu.Unlock()
	return st
}

// Close stops both listeners at once, waits for background snapshot
// creation, and removes a temporary snapshots directory.
func (s *Server) Close() error {
	s.grpcSrv.Stop()
	s.deferMu.Lock()
	s.closed = true
	for t := range s.deferred {
		t.Stop()
	}
	s.deferred = nil
	s.deferMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.httpSrv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.httpSrv.Close()
	}
	s.snapWG.Wait()
	s.cleanup()
	return err
}

func (s *Server) cleanup() {
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
}

func (s *Server) authInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if s.opts.APIKey == "" || info.FullMethod == qdrant.Qdrant_HealthCheck_FullMethodName {
		return h(ctx, req)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("api-key") {
		if v == s.opts.APIKey {
			return h(ctx, req)
		}
	}
	for _, v := range md.Get("authorization") {
		if v == "Bearer "+s.opts.APIKey {
			return h(ctx, req)
		}
	}
	return nil, status.Error(codes.Unauthenticated, "Must provide an API key or an Authorization bearer token")
}

func (s *Server) get(name string) (*collection, error) {
	s.mu.RLock()
	c, ok := s.collections[s.resolveLocked(name)]
	s.mu.RUnlock()
	if !ok {
		return nil, notFound(name)
	}
	return c, nil
}

// later runs f after d unless the server closes first.
func (s *Server) later(d time.Duration, f func()) {
	s.deferMu.Lock()
	defer s.deferMu.Unlock()
	if s.closed {
		return
	}
	if s.deferred == nil {
		s.deferred = map[*time.Timer]bool{}
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.deferMu.Lock()
		live := s.deferred[t]
		delete(s.deferred, t)
		s.deferMu.Unlock()
		if live {
			f()
		}
	})
	s.deferred[t] = true
}

// takeCorruptDownload consumes one scheduled corrupt download.
func (s *Server) takeCorruptDownload() bool {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.faults.CorruptDownloads > 0 {
		s.faults.CorruptDownloads--
		return true
	}
	return false
}

// injectUpsertFault consumes one scheduled or random upsert failure.
func (s *Server) injectUpsertFault(ctx context.Context, points int) error {
	s.faultMu.Lock()
	s.upsertCalls++
	f := s.faults
	fail := false
	if s.faults.FailUpserts > 0 {
		s.faults.FailUpserts--
		fail = true
	} else if f.FailRate > 0 && s.rng.Float64() < f.FailRate {
		fail = true
	}
	if !fail {
		s.upsertPoints += uint64(points)
	}
	s.faultMu.Unlock()
	if f.UpsertDelay > 0 {
		t := time.NewTimer(f.UpsertDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if !fail {
		return nil
	}
	switch f.FailCode {
	case codes.ResourceExhausted:
		if f.RetryAfter > 0 {
			grpc.SetTrailer(ctx, metadata.Pairs("retry-after", fmt.Sprint(f.RetryAfter)))
		}
		return status.Error(codes.ResourceExhausted, "Too many requests: Rate limiting exceeded: Write rate limit exceeded, retry later")
	case codes.Internal:
		return status.Error(codes.Internal, "Service internal error: injected fault")
	default:
		return status.Error(codes.Unavailable, "Service unavailable: injected fault")
	}
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
