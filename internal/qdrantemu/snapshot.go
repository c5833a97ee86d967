package qdrantemu

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Snapshot archive format (the emulator's own, NOT Qdrant's segment format):
// an uncompressed tar holding
//
//	emulator.json       {"format": snapshotFormat, "version": 1, "collection", "peer_id", "points"}
//	config.json         protojson of qdrant.CollectionConfig
//	payload_index.json  protojson of {field: PayloadSchemaInfo}
//	points.pb           varint-length-delimited qdrant.PointStruct, ascending id order
//
// Restoring it into an emulator (upload or recover) rebuilds the identical
// collection. Real Qdrant cannot read it, and the emulator cannot read
// Qdrant's snapshots.
const snapshotFormat = "snappipe-qdrant-emulator-snapshot"

type snapshotMeta struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	Collection string `json:"collection"`
	PeerID     uint64 `json:"peer_id"`
	Points     uint64 `json:"points"`
	Named      bool   `json:"named_vectors"`
}

// SnapshotDescription describes a snapshot file.
type SnapshotDescription struct {
	Name         string
	CreationTime time.Time
	Size         int64
	Checksum     string // lowercase hex SHA-256; empty without a sidecar
}

func (d SnapshotDescription) proto() *qdrant.SnapshotDescription {
	out := &qdrant.SnapshotDescription{Name: d.Name, CreationTime: timestamppb.New(d.CreationTime), Size: d.Size}
	if d.Checksum != "" {
		c := d.Checksum
		out.Checksum = &c
	}
	return out
}

func (d SnapshotDescription) restJSON() map[string]any {
	m := map[string]any{"name": d.Name, "creation_time": d.CreationTime.UTC().Format("2006-01-02T15:04:05"), "size": d.Size}
	if d.Checksum != "" {
		m["checksum"] = d.Checksum
	}
	return m
}

func (s *Server) collectionSnapshotDir(c string) string {
	return filepath.Join(s.opts.SnapshotsDir, c)
}

// createSnapshot captures the collection as it is now and writes the file in
// the background. It returns when the file is complete or ctx ends; in the
// latter case creation goes on, as it does in Qdrant.
func (s *Server) createSnapshot(ctx context.Context, name string) (SnapshotDescription, error) {
	col, err := s.get(name)
	if err != nil {
		return SnapshotDescription{}, err
	}
	snap := col.capture()
	if s.cluster != nil {
		// A peer's collection snapshot holds its local shards only.
		snap = col.captureShards(s.localShards(col))
	}
	dir := s.collectionSnapshotDir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SnapshotDescription{}, status.Errorf(codes.Internal, "Service internal error: %v", err)
	}
	fileName := s.reserveSnapshotName(name, dir)
	s.log.Info("snapshot requested", "collection", name, "snapshot", fileName)
	s.record(Op{Kind: "snapshot", Collection: name})
	return s.writeInBackground(ctx, snap, dir, fileName, name)
}

// writeInBackground writes a captured snapshot as Qdrant does: after the
// fault delay, in the background, the name reserved until it is done. It
// returns when the file is complete or ctx ends (creation then goes on).
// A collection snapshot (collection != "") is logged and counted.
func (s *Server) writeInBackground(ctx context.Context, snap *capturedCollection, dir, fileName, collection string) (SnapshotDescription, error) {
	type result struct {
		d   SnapshotDescription
		err error
	}
	s.faultMu.Lock()
	delay := s.faults.SnapshotDelay
	s.faultMu.Unlock()
	done := make(chan result, 1)
	s.snapWG.Add(1)
	go func() {
		defer s.snapWG.Done()
		defer s.releaseSnapshotName(dir, fileName)
		if delay > 0 {
			time.Sleep(delay)
		}
		d, err := s.writeSnapshot(snap, dir, fileName)
		switch {
		case collection == "":
		case err == nil:
			s.snapMu.Lock()
			s.snapshotsCreated++
			s.snapMu.Unlock()
			s.log.Info("snapshot created", "collection", collection, "snapshot", fileName, "size", d.Size)
		default:
			s.log.Error("snapshot failed", "collection", collection, "err", err)
		}
		done <- result{d, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return SnapshotDescription{}, status.Errorf(codes.Internal, "Service internal error: %v", r.err)
		}
		return r.d, nil
	case <-ctx.Done():
		return SnapshotDescription{}, status.FromContextError(ctx.Err()).Err()
	}
}

// reserveSnapshotName picks {collection}-{peer}-{UTC time}.snapshot. Qdrant
// would give two snapshots of the same second one name and overwrite; the
// emulator moves the later one to the next free second instead.
func (s *Server) reserveSnapshotName(collection, dir string) string {
	return s.reserveName(dir, fmt.Sprintf("%s-%d-", collection, s.peerID))
}

// reserveName picks PREFIX{UTC time}.snapshot, free in dir and not being
// written (the next free second when taken).
func (s *Server) reserveName(dir, prefix string) string {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	t := time.Now().UTC().Truncate(time.Second)
	for {
		n := prefix + t.Format("2006-01-02-15-04-05") + ".snapshot"
		key := filepath.Join(dir, n)
		if _, err := os.Stat(key); !s.reserved[key] && errors.Is(err, os.ErrNotExist) {
			s.reserved[key] = true
			return n
		}
		t = t.Add(time.Second)
	}
}

func (s *Server) releaseSnapshotName(dir, name string) {
	s.snapMu.Lock()
	delete(s.reserved, filepath.Join(dir, name))
	s.snapMu.Unlock()
}

// capturedCollection is an immutable view of a collection at one moment.
// Stored points are never mutated in place, so sharing them is safe.
type capturedCollection struct {
	name    string
	cfg     *qdrant.CollectionConfig
	named   bool
	indexes map[string]*qdrant.PayloadSchemaInfo
	keys    []pointKey
	points  []*storedPoint
}

func (c *collection) capture() *capturedCollection {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cc := &capturedCollection{name: c.name, cfg: proto.Clone(c.cfg).(*qdrant.CollectionConfig), named: c.named,
		indexes: map[string]*qdrant.PayloadSchemaInfo{}}
	for k, v := range c.indexes {
		cc.indexes[k] = proto.Clone(v).(*qdrant.PayloadSchemaInfo)
	}
	cc.keys = c.sortedKeys()
	cc.points = make([]*storedPoint, len(cc.keys))
	for i, k := range cc.keys {
		cc.points[i] = c.points[k]
	}
	return cc
}

// writeSnapshot writes the archive as <name>.tmp, then the .checksum
// sidecar, then renames the archive into place (Qdrant's order: a listed
// snapshot always has its checksum).
func (s *Server) writeSnapshot(cc *capturedCollection, dir, name string) (SnapshotDescription, error) {
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return SnapshotDescription{}, err
	}
	defer os.Remove(tmp)
	h := sha256.New()
	if err := writeArchive(io.MultiWriter(f, h), cc, s.peerID, dir); err != nil {
		f.Close()
		return SnapshotDescription{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return SnapshotDescription{}, err
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return SnapshotDescription{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := writeFileAtomic(final+".checksum", []byte(sum)); err != nil {
		return SnapshotDescription{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return SnapshotDescription{}, err
	}
	syncDir(dir)
	fi, err := os.Stat(final)
	if err != nil {
		return SnapshotDescription{}, err
	}
	return SnapshotDescription{Name: name, CreationTime: fi.ModTime().UTC(), Size: st.Size(), Checksum: sum}, nil
}

func writeArchive(w io.Writer, cc *capturedCollection, peer uint64, tmpDir string) error {
	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	meta, _ := json.Marshal(snapshotMeta{Format: snapshotFormat, Version: 1, Collection: cc.name, PeerID: peer, Points: uint64(len(cc.keys)), Named: cc.named})
	if err := add("emulator.json", meta); err != nil {
		return err
	}
	cfg, err := protojson.Marshal(cc.cfg)
	if err != nil {
		return err
	}
	if err := add("config.json", cfg); err != nil {
		return err
	}
	idx := map[string]json.RawMessage{}
	for k, v := range cc.indexes {
		b, err := protojson.Marshal(v)
		if err != nil {
			return err
		}
		idx[k] = b
	}
	ib, _ := json.Marshal(idx)
	if err := add("payload_index.json", ib); err != nil {
		return err
	}
	// Points are spooled to a temp file first: a tar header needs the size.
	pf, err := os.CreateTemp(tmpDir, ".points-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(pf.Name())
	defer pf.Close()
	bw := bufio.NewWriterSize(pf, 1<<20)
	for i, k := range cc.keys {
		sp := cc.points[i]
		ps := &qdrant.PointStruct{Id: k.id(), Payload: sp.payload}
		if !cc.named {
			ps.Vectors = qdrant.NewVectorsDense(sp.vectors[""])
		} else {
			m := map[string]*qdrant.Vector{}
			for n, d := range sp.vectors {
				m[n] = qdrant.NewVectorDense(d)
			}
			for n, t := range sp.multi {
				m[n] = qdrant.NewVectorMulti(t)
			}
			for n, sv := range sp.sparse {
				m[n] = qdrant.NewVectorSparse(sv.indices, sv.values)
			}
			ps.Vectors = qdrant.NewVectorsMap(m)
		}
		if _, err := protodelim.MarshalTo(bw, ps); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	size, err := pf.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := pf.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "points.pb", Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, pf); err != nil {
		return err
	}
	return tw.Close()
}

// readArchive parses an emulator snapshot into a fresh collection named name.
func readArchive(r io.Reader, name string, discard bool) (*collection, error) {
	tr := tar.NewReader(r)
	col := &collection{name: name, points: map[pointKey]*storedPoint{}, indexes: map[string]*qdrant.PayloadSchemaInfo{}, discard: discard}
	var meta *snapshotMeta
	sawPoints := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read snapshot archive: %w", err)
		}
		switch hdr.Name {
		case "emulator.json":
			meta = &snapshotMeta{}
			if err := json.NewDecoder(tr).Decode(meta); err != nil {
				return nil, fmt.Errorf("read emulator.json: %w", err)
			}
			if meta.Format != snapshotFormat {
				return nil, fmt.Errorf("not an emulator snapshot (format %q)", meta.Format)
			}
			col.named = meta.Named
		case "config.json":
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			col.cfg = &qdrant.CollectionConfig{}
			if err := protojson.Unmarshal(b, col.cfg); err != nil {
				return nil, fmt.Errorf("read config.json: %w", err)
			}
		case "payload_index.json":
			idx := map[string]json.RawMessage{}
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return nil, fmt.Errorf("read payload_index.json: %w", err)
			}
			for k, v := range idx {
				si := &qdrant.PayloadSchemaInfo{}
				if err := protojson.Unmarshal(v, si); err != nil {
					return nil, err
				}
				col.indexes[k] = si
			}
		case "points.pb":
			if col.cfg == nil {
				return nil, errors.New("snapshot archive: points.pb before config.json")
			}
			sawPoints = true
			br := bufio.NewReaderSize(tr, 1<<20)
			for {
				ps := &qdrant.PointStruct{}
				if err := (protodelim.UnmarshalOptions{MaxSize: -1}).UnmarshalFrom(br, ps); err != nil {
					if err == io.EOF {
						break
					}
					return nil, fmt.Errorf("read points.pb: %w", err)
				}
				k, sp, err := col.preparePoint(ps)
				if err != nil {
					return nil, fmt.Errorf("snapshot point: %w", err)
				}
				if discard {
					col.discarded++
					continue
				}
				col.points[k] = sp
			}
		}
	}
	if meta == nil || col.cfg == nil || !sawPoints {
		return nil, errors.New("snapshot archive is incomplete: expected emulator.json, config.json and points.pb")
	}
	if meta.Points != col.count() {
		return nil, fmt.Errorf("snapshot archive holds %d points, its header says %d", col.count(), meta.Points)
	}
	return col, nil
}

func (s *Server) listSnapshots(name string) ([]SnapshotDescription, error) {
	if _, err := s.get(name); err != nil {
		return nil, err
	}
	dir := s.collectionSnapshotDir(name)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "Service internal error: %v", err)
	}
	var out []SnapshotDescription
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".snapshot") {
			continue
		}
		d, err := describe(dir, e.Name())
		if err != nil {
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b SnapshotDescription) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func describe(dir, name string) (SnapshotDescription, error) {
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		return SnapshotDescription{}, err
	}
	d := SnapshotDescription{Name: name, CreationTime: fi.ModTime().UTC(), Size: fi.Size()}
	if b, err := os.ReadFile(filepath.Join(dir, name+".checksum")); err == nil {
		d.Checksum = strings.ToLower(strings.TrimSpace(string(b)))
	}
	return d, nil
}

// validSnapshotName refuses names that would leave the collection's folder.
func validSnapshotName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\\\x00")
}

func (s *Server) snapshotPath(collection, name string) (string, error) {
	if _, err := s.get(collection); err != nil {
		return "", err
	}
	if !validSnapshotName(name) || !strings.HasSuffix(name, ".snapshot") {
		return "", status.Errorf(codes.NotFound, "Not found: Snapshot %s not found", name)
	}
	p := filepath.Join(s.collectionSnapshotDir(collection), name)
	if _, err := os.Stat(p); err != nil {
		return "", status.Errorf(codes.NotFound, "Not found: Snapshot %s not found", name)
	}
	return p, nil
}

func (s *Server) deleteSnapshot(collection, name string) error {
	p, err := s.snapshotPath(collection, name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return status.Errorf(codes.Internal, "Service internal error: %v", err)
	}
	os.Remove(p + ".checksum")
	return nil
}

// restore replaces (or creates) collection name from an archive file,
// verifying checksum first when one is given.
func (s *Server) restore(name, path, checksum string) error {
	if err := validateCollectionName(name); err != nil {
		return err
	}
	if checksum != "" {
		got, err := fileSHA256(path)
		if err != nil {
			return status.Errorf(codes.Internal, "Service internal error: %v", err)
		}
		if !strings.EqualFold(strings.TrimSpace(checksum), got) {
			return status.Errorf(codes.InvalidArgument, "Wrong input: Snapshot checksum mismatch: expected %s, got %s", strings.TrimSpace(checksum), got)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return status.Errorf(codes.Internal, "Service internal error: %v", err)
	}
	defer f.Close()
	col, err := readArchive(f, name, s.opts.Discard)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "Wrong input: Failed to read snapshot %s: %v", filepath.Base(path), err)
	}
	s.mu.Lock()
	if old := s.collections[name]; s.cluster != nil && old != nil {
		// A peer restores its own shards: the others stay as they are.
		local := s.localShards(old)
		s.replaceShards(old, col, local)
	} else {
		s.collections[name] = col
	}
	s.mu.Unlock()
	s.log.Info("collection recovered from snapshot", "collection", name, "points", col.count())
	return nil
}

// replaceShards replaces the points of the given shards of dst with src's
// points of those shards.
func (s *Server) replaceShards(dst, src *collection, shards map[uint32]bool) {
	n := dst.shardNumber()
	dst.mu.Lock()
	defer dst.mu.Unlock()
	for k := range dst.points {
		if shards[shardOf(k, n)] {
			delete(dst.points, k)
		}
	}
	for k, p := range src.points {
		if shards[shardOf(k, n)] {
			dst.points[k] = p
		}
	}
	dst.opSeq++
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	f.Close()
	return os.Rename(tmp, path)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
