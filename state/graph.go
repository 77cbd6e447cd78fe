package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/rida-build/rida/modgraph"
)

// The module graph's indexes. Both are maintained in the transactions that
// change what they index, so they never disagree with the records.
var (
	// bucketIndexDependents: buildrequired module \x00 dependent module
	// \x00 dependent stream -> JSON []string (the streams the dependent
	// names for it: a list, empty for every stream, or exclusions).
	bucketIndexDependents = []byte("index_dependents")
	// bucketBuildsByStream: module \x00 stream \x00 build id BE -> one
	// byte, the build's state. Newest build last within a stream.
	bucketBuildsByStream = []byte("builds_by_stream")

	keyBuildsByStreamFilled = []byte("builds_by_stream_filled")
)

func streamPrefix(module, stream string) []byte {
	return []byte(module + "\x00" + stream + "\x00")
}

func buildsByStreamKey(module, stream string, id uint64) []byte {
	return append(streamPrefix(module, stream), u64(id)...)
}

// fillBuildsByStream builds the per-stream index once for a file written
// before it existed (one scan at Open, never on a hot path).
func fillBuildsByStream(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyBuildsByStreamFilled) != nil {
		return nil
	}
	err := tx.Bucket(bucketModuleBuilds).ForEach(func(k, v []byte) error {
		var mb struct {
			ID     uint64      `json:"id"`
			Name   string      `json:"name"`
			Stream string      `json:"stream"`
			State  ModuleState `json:"state"`
		}
		if err := json.Unmarshal(v, &mb); err != nil {
			return fmt.Errorf("decode module build %x: %w", k, err)
		}
		return tx.Bucket(bucketBuildsByStream).Put(buildsByStreamKey(mb.Name, mb.Stream, mb.ID), []byte{byte(mb.State)})
	})
	if err != nil {
		return err
	}
	return meta.Put(keyBuildsByStreamFilled, []byte{1})
}

// StreamBuilds returns the builds of module:stream, newest first, whose
// state is one of states (every state when none is given). It reads the
// per-stream index and decodes only the builds it returns.
func (s *Store) StreamBuilds(ctx context.Context, module, stream string, states ...ModuleState) ([]ModuleBuild, error) {
	var out []ModuleBuild
	err := s.view(ctx, "StreamBuilds", func(tx *bolt.Tx) error {
		prefix := streamPrefix(module, stream)
		c := tx.Bucket(bucketBuildsByStream).Cursor()
		var ids []uint64
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 || len(v) != 1 {
				continue
			}
			if len(states) == 0 || slices.Contains(states, ModuleState(v[0])) {
				ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
		for i := len(ids) - 1; i >= 0; i-- {
			mb, err := getModuleBuild(tx, ids[i])
			if err != nil {
				return err
			}
			out = append(out, *mb)
		}
		return nil
	})
	return out, wrap("StreamBuilds", err)
}

// StreamsWithState returns the streams of module that have at least one
// build in state st, sorted: the available streams module stream expansion
// chooses from. It reads keys only.
func (s *Store) StreamsWithState(ctx context.Context, module string, st ModuleState) ([]string, error) {
	var out []string
	err := s.view(ctx, "StreamsWithState", func(tx *bolt.Tx) error {
		prefix := []byte(module + "\x00")
		c := tx.Bucket(bucketBuildsByStream).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(v) != 1 || ModuleState(v[0]) != st || len(k) < len(prefix)+9 {
				continue
			}
			stream := string(k[len(prefix) : len(k)-9])
			if !slices.Contains(out, stream) {
				out = append(out, stream)
			}
		}
		return nil
	})
	slices.Sort(out)
	return out, wrap("StreamsWithState", err)
}

// setStreamBuildRequires replaces the dependents index entries of
// module:stream with reqs (platform is never indexed).
func setStreamBuildRequires(tx *bolt.Tx, module, stream string, old, reqs []modgraph.Requirement) error {
	b := tx.Bucket(bucketIndexDependents)
	for _, r := range old {
		if err := b.Delete([]byte(r.Name + "\x00" + module + "\x00" + stream)); err != nil {
			return err
		}
	}
	for _, r := range reqs {
		streams := r.Streams
		if streams == nil {
			streams = []string{}
		}
		if err := putJSON(b, []byte(r.Name+"\x00"+module+"\x00"+stream), streams); err != nil {
			return err
		}
	}
	return nil
}

// dependentsOf lists the indexed streams that buildrequire dep (their
// buildrequires name dep's stream, every stream, or every stream but
// others): one prefix scan of the dependents index.
func dependentsOf(tx *bolt.Tx, dep modgraph.StreamRef) ([]modgraph.StreamRef, error) {
	var out []modgraph.StreamRef
	prefix := []byte(dep.Name + "\x00")
	c := tx.Bucket(bucketIndexDependents).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		module, stream, ok := strings.Cut(string(k[len(prefix):]), "\x00")
		if !ok {
			return nil, fmt.Errorf("malformed dependents index key %q", k)
		}
		var streams []string
		if err := json.Unmarshal(v, &streams); err != nil {
			return nil, fmt.Errorf("decode dependents index %q: %w", k, err)
		}
		if (modgraph.Requirement{Name: dep.Name, Streams: streams}).Matches(dep.Stream) {
			out = append(out, modgraph.StreamRef{Name: module, Stream: stream})
		}
	}
	return out, nil
}

// Dependents returns the indexed module streams that buildrequire
// module:stream directly, sorted.
func (s *Store) Dependents(ctx context.Context, module, stream string) ([]modgraph.StreamRef, error) {
	var out []modgraph.StreamRef
	err := s.view(ctx, "Dependents", func(tx *bolt.Tx) error {
		var err error
		out, err = dependentsOf(tx, modgraph.StreamRef{Name: module, Stream: stream})
		return err
	})
	slices.SortFunc(out, func(a, b modgraph.StreamRef) int { return strings.Compare(a.String(), b.String()) })
	return out, wrap("Dependents", err)
}

// StreamBuildRequires returns what the indexed modulemd of module:stream
// buildrequires (platform left out); nil when the stream is not indexed.
func (s *Store) StreamBuildRequires(ctx context.Context, module, stream string) ([]modgraph.Requirement, error) {
	var rec indexRecord
	err := s.view(ctx, "StreamBuildRequires", func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bucketIndexModules), moduleIndexKey(module, stream), &rec)
		return err
	})
	return rec.BuildRequires, wrap("StreamBuildRequires", err)
}

// IndexedStreams returns the indexed streams of module, sorted.
func (s *Store) IndexedStreams(ctx context.Context, module string) ([]string, error) {
	var out []string
	err := s.view(ctx, "IndexedStreams", func(tx *bolt.Tx) error {
		prefix := []byte(module + "\x00")
		c := tx.Bucket(bucketIndexModules).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	return out, wrap("IndexedStreams", err)
}

// CascadeEvent is what Options.CascadeFor sees when a module build becomes
// ready.
type CascadeEvent struct {
	// Build is the build that became ready; Request the request it served
	// (nil when gone).
	Build   *ModuleBuild
	Request *BuildRequest
	// Dependents lists the indexed streams that buildrequire a stream,
	// read in the transaction.
	Dependents func(modgraph.StreamRef) ([]modgraph.StreamRef, error)
	// ModuleRepo returns the module repository recorded in the index for
	// a stream ("" when it is not indexed).
	ModuleRepo func(modgraph.StreamRef) string
}

// CascadeRecord is what a build's becoming ready queued.
type CascadeRecord struct {
	// Requests are the build requests queued (created or merged), in
	// build order.
	Requests []uint64 `json:"requests,omitempty"`
	// Note says why nothing (or not everything) was queued: cascades
	// off, a cycle, the depth limit.
	Note string `json:"note,omitempty"`
}

// cascade runs the CascadeFor hook for mb, which has just become ready, and
// enqueues what it asks for in the same transaction.
func (s *Store) cascade(tx *bolt.Tx, mb *ModuleBuild) error {
	if s.opts.CascadeFor == nil {
		return nil
	}
	ev := CascadeEvent{
		Build:      mb,
		Dependents: func(r modgraph.StreamRef) ([]modgraph.StreamRef, error) { return dependentsOf(tx, r) },
		ModuleRepo: func(r modgraph.StreamRef) string {
			var rec indexRecord
			if _, err := getJSON(tx.Bucket(bucketIndexModules), moduleIndexKey(r.Name, r.Stream), &rec); err != nil {
				return ""
			}
			return rec.ModuleRepo
		},
	}
	if mb.RequestID != 0 {
		if r, err := getRequest(tx, mb.RequestID); err == nil {
			ev.Request = r
		} else if !isNotFound(err) {
			return err
		}
	}
	reqs, note := s.opts.CascadeFor(ev)
	rec := &CascadeRecord{Note: note}
	for _, r := range reqs {
		if err := validateRequest("CascadeFor", &r); err != nil {
			return err
		}
		res, err := s.enqueue(tx, r)
		if err != nil {
			return err
		}
		rec.Requests = append(rec.Requests, res.Request.ID)
	}
	if len(rec.Requests) == 0 && rec.Note == "" {
		return nil
	}
	mb.Cascade = rec
	return s.appendEvent(tx, EventCascade, "modulebuild/"+strconv.FormatUint(mb.ID, 10), map[string]any{
		"requests": rec.Requests, "note": rec.Note,
	})
}

// LatestStreamBuild returns the newest build of module:stream whose state
// is one of states (any when none) and for which match (nil: any) returns
// true, or nil. It walks the per-stream index newest first and decodes
// builds only until one matches, so its cost does not grow with the
// stream's history when the newest builds match.
func (s *Store) LatestStreamBuild(ctx context.Context, module, stream string, match func(*ModuleBuild) bool, states ...ModuleState) (*ModuleBuild, error) {
	var out *ModuleBuild
	err := s.view(ctx, "LatestStreamBuild", func(tx *bolt.Tx) error {
		prefix := streamPrefix(module, stream)
		c := tx.Bucket(bucketBuildsByStream).Cursor()
		k, v := c.Seek(append(bytes.Clone(prefix), 0xff))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if len(k) != len(prefix)+8 || len(v) != 1 {
				continue
			}
			if len(states) > 0 && !slices.Contains(states, ModuleState(v[0])) {
				continue
			}
			mb, err := getModuleBuild(tx, binary.BigEndian.Uint64(k[len(prefix):]))
			if err != nil {
				return err
			}
			if match == nil || match(mb) {
				out = mb
				return nil
			}
		}
		return nil
	})
	return out, wrap("LatestStreamBuild", err)
}

// StreamMaxVersion returns the highest version any build of
// module:stream:context has had (0 when none), from a per-stream counter
// kept by putModuleBuild: no build is decoded.
func (s *Store) StreamMaxVersion(ctx context.Context, module, stream, context string) (uint64, error) {
	var v uint64
	err := s.view(ctx, "StreamMaxVersion", func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStreamMaxVersion); b != nil {
			if raw := b.Get(maxVersionKey(module, stream, context)); len(raw) == 8 {
				v = binary.BigEndian.Uint64(raw)
			}
		}
		return nil
	})
	return v, wrap("StreamMaxVersion", err)
}

// bucketStreamMaxVersion: module \x00 stream \x00 context -> highest
// version BE.
var bucketStreamMaxVersion = []byte("stream_max_version")

func maxVersionKey(module, stream, context string) []byte {
	return []byte(module + "\x00" + stream + "\x00" + context)
}

// noteVersion raises the stream's highest version to mb's.
func noteVersion(tx *bolt.Tx, mb *ModuleBuild) error {
	if mb.Version == 0 {
		return nil
	}
	b := tx.Bucket(bucketStreamMaxVersion)
	k := maxVersionKey(mb.Name, mb.Stream, mb.Context)
	if raw := b.Get(k); len(raw) == 8 && binary.BigEndian.Uint64(raw) >= mb.Version {
		return nil
	}
	return b.Put(k, u64(mb.Version))
}
