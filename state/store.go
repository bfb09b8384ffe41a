// Package state keeps processor state in Pebble: order-preserving key
// encodings, a counter merge operator, input offsets committed in the same
// batch as the data they produced, and range iteration.
//
// Key space: the byte 0x00 opens the store's own metadata (offsets); every
// other first byte belongs to a processor table. Processors choose their
// table bytes and key layouts; see their packages.
package state

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.opentelemetry.io/otel/metric"
)

// blockCacheSize is the Pebble block cache of a store.
const blockCacheSize = 64 << 20

const (
	metaTable  byte = 0x00
	offsetsTag byte = 'o'
)

type cfg struct {
	fs            vfs.FS
	logger        *slog.Logger
	meterProvider metric.MeterProvider
	cache         *Cache
	memTableSize  uint64
	readCache     int
	readCacheKeep func([]byte) bool
}

// Opt configures Open.
type Opt interface{ apply(*cfg) }

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

// WithFS stores the data on fs instead of the operating system's disk
// (vfs.NewMem() in tests).
func WithFS(fs vfs.FS) Opt { return opt(func(c *cfg) { c.fs = fs }) }

// WithLogger logs Pebble's background events at debug level (default: discard).
func WithLogger(l *slog.Logger) Opt { return opt(func(c *cfg) { c.logger = l }) }

// WithCache makes the store use a block cache shared with other stores
// instead of a cache of its own.
func WithCache(c *Cache) Opt { return opt(func(cf *cfg) { cf.cache = c }) }

// WithMemTableSize sets the size of the store's memtables (default 32 MiB;
// up to two can be in memory). Many small stores in one process want less.
func WithMemTableSize(n uint64) Opt { return opt(func(c *cfg) { c.memTableSize = n }) }

// Cache is a block cache that several stores share. Create it with
// NewCache and close it when no store uses it any more.
type Cache struct{ c *pebble.Cache }

// NewCache makes a shared block cache of size bytes.
func NewCache(size int64) *Cache { return &Cache{c: pebble.NewCache(size)} }

// Close releases the caller's reference; stores still open keep theirs.
func (c *Cache) Close() { c.c.Unref() }

// Store is a Pebble database of processor state. It is safe for concurrent
// use. The caller closes it.
type Store struct {
	db      *pebble.DB
	dir     string
	metrics metric.Registration
	reads   *readCache // nil without WithReadCache
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts ...Opt) (*Store, error) {
	return open(dir, tuning{cacheSize: blockCacheSize, memTableSize: 32 << 20}, opts)
}

// indexBlockSize keeps the index of a table of up to about 32 MiB in one
// block (Pebble splits an index past its target size in two levels).
const indexBlockSize = 256 << 10

// tuning is what differs between the Pebble settings of the stores.
type tuning struct {
	cacheSize    int64
	memTableSize uint64
}

func open(dir string, t tuning, opts []Opt) (*Store, error) {
	c := cfg{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o.apply(&c)
	}
	var cache *pebble.Cache
	if c.cache != nil {
		cache = c.cache.c
	} else {
		cache = pebble.NewCache(t.cacheSize)
		defer cache.Unref()
	}
	if c.memTableSize != 0 {
		t.memTableSize = c.memTableSize
	}
	po := &pebble.Options{
		FS:                          c.fs,
		Cache:                       cache,
		Merger:                      counterMerger,
		MemTableSize:                t.memTableSize,
		MemTableStopWritesThreshold: 2,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{c.logger},
	}
	for i := range po.Levels {
		// NB: a point read skips the tables whose filter rules its key
		// out, so it seeks one level instead of all of them, and a
		// table's index is one block (a seek reads two blocks, not three).
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].IndexBlockSize = indexBlockSize
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("state: open %q: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, reads: newReadCache(c.readCache, c.readCacheKeep)}
	if c.meterProvider != nil {
		if s.metrics, err = s.instrument(c.meterProvider); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close releases the store; committed batches are already in its WAL.
// Pending batches must be committed or closed first.
func (s *Store) Close() error {
	if s.metrics != nil {
		_ = s.metrics.Unregister()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state: close %q: %w", s.dir, err)
	}
	return nil
}

// DiskUsage is the number of bytes the store occupies on disk.
func (s *Store) DiskUsage() uint64 { return s.db.Metrics().DiskSpaceUsage() }

func offsetKey(dst []byte, topic string, partition int32) []byte {
	dst = append(dst, metaTable, offsetsTag)
	dst = append(dst, topic...)
	dst = append(dst, 0)
	return AppendUint32(dst, uint32(partition))
}

// Offset returns the next offset to consume from topic/partition as
// recorded by the last committed batch, and false when none was recorded.
func (s *Store) Offset(topic string, partition int32) (int64, bool, error) {
	v, closer, err := s.db.Get(offsetKey(nil, topic, partition))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("state: read offset %s/%d: %w", topic, partition, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("state: offset %s/%d has %d bytes, want 8", topic, partition, len(v))
	}
	return Int64(v, 0), true, nil
}

// Scan calls fn for every key in [lower, upper) in order; a nil upper
// means no bound. The slices passed to fn are valid only during the call.
// An error from fn stops the scan and is returned.
func (s *Store) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("state: scan: %w", err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	return nil
}

// Get returns a copy of key's value appended to dst, and false when the
// key is absent.
func (s *Store) Get(dst, key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, fmt.Errorf("state: get: %w", err)
	}
	dst = append(dst, v...)
	return dst, true, closer.Close()
}

// SortedReader reads many keys in ascending order more cheaply than Get:
// each lookup continues from where the last one stopped. It sees the
// store as of its creation. Close it after use.
type SortedReader struct{ it *pebble.Iterator }

// NewSortedReader opens a SortedReader.
func (s *Store) NewSortedReader() (*SortedReader, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("state: reader: %w", err)
	}
	return &SortedReader{it: it}, nil
}

// Get returns key's value, valid until the next call, and false when the
// key is absent. Keys must come in ascending order.
func (r *SortedReader) Get(key []byte) ([]byte, bool, error) {
	if !r.it.SeekGE(key) || !bytes.Equal(r.it.Key(), key) {
		return nil, false, r.it.Error()
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, false, fmt.Errorf("state: reader: %w", err)
	}
	return v, true, nil
}

// ScanFloor calls fn, in order, for the keys with prefix from the last
// one before key (from the first with prefix when there is none), until fn
// returns false; the slices passed to fn are valid only during the call.
// It seeks once, backwards (twice when no key with prefix is before key).
//
// REQUIRES: key has prefix.
func (r *SortedReader) ScanFloor(prefix, key []byte, fn func(key, value []byte) bool) error {
	ok := r.it.SeekLT(key)
	if !ok || !bytes.HasPrefix(r.it.Key(), prefix) {
		ok = r.it.SeekGE(prefix)
	}
	return r.scan(ok, prefix, fn)
}

// Scan calls fn, in order, for the keys with prefix, until fn returns
// false; the slices passed to fn are valid only during the call. It
// seeks once, forwards.
func (r *SortedReader) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	return r.scan(r.it.SeekGE(prefix), prefix, fn)
}

// scan goes on from the iterator's position (ok: it has one) through the
// keys with prefix.
func (r *SortedReader) scan(ok bool, prefix []byte, fn func(key, value []byte) bool) error {
	for ; ok && bytes.HasPrefix(r.it.Key(), prefix); ok = r.it.Next() {
		v, err := r.it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("state: reader: %w", err)
		}
		if !fn(r.it.Key(), v) {
			return nil
		}
	}
	return r.it.Error()
}

// Close releases the reader.
func (r *SortedReader) Close() error { return r.it.Close() }

// NewBatch starts an atomic batch of writes. The caller commits or closes it.
func (s *Store) NewBatch() *Batch { return &Batch{b: s.db.NewBatch(), reads: s.reads} }

// NewBatchSize starts a batch with room for about size bytes of keys and
// values, so that a large batch is not copied as it grows.
func (s *Store) NewBatchSize(size int) *Batch {
	return &Batch{b: s.db.NewBatchWithSize(size + size/8), reads: s.reads}
}

// Batch is a set of writes applied atomically by Commit. It is not safe
// for concurrent use.
type Batch struct {
	b     *pebble.Batch
	key   []byte
	reads *readCache // the store's, which forgets what the batch wrote
}

// Merge adds the counter vector value (see AppendCounters) to key.
func (b *Batch) Merge(key, value []byte) error { return b.b.Merge(key, value, nil) }

// Set writes value under key.
func (b *Batch) Set(key, value []byte) error { return b.b.Set(key, value, nil) }

// Delete removes key.
func (b *Batch) Delete(key []byte) error { return b.b.Delete(key, nil) }

// SetOffset records that the batch reflects every input record of
// topic/partition before offset next.
func (b *Batch) SetOffset(topic string, partition int32, next int64) error {
	b.key = offsetKey(b.key[:0], topic, partition)
	return b.b.Set(b.key, AppendInt64(nil, next), nil)
}

// Commit applies the batch atomically and releases it. Without sync the
// write reaches the WAL in the OS page cache: it survives a crash of the
// process (kill -9), not of the machine. Either way the data and the
// offsets it recorded stay together, so after a machine crash the input
// after the surviving offsets is consumed again from the log and nothing
// is counted twice or lost. With sync the WAL is fsynced.
func (b *Batch) Commit(sync bool) error {
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	var repr []byte
	if b.reads != nil {
		// NB: taken now: Pebble drops a large batch's data as it commits
		// it (the memtable keeps it), and the cache must see every key.
		repr = b.b.Repr()
	}
	err := b.b.Commit(wo)
	if err == nil && b.reads != nil {
		b.reads.committed(repr)
	}
	if cerr := b.b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("state: commit: %w", err)
	}
	return nil
}

// Close releases an uncommitted batch, discarding its writes.
func (b *Batch) Close() error { return b.b.Close() }

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf(format, args...))
}
