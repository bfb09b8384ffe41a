package similar

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// The members of a bucket are stored in chunks of ascending ids, so that
// a query reads a bucket's first members with one seek and one value
// (not one key per member), and a change rewrites one chunk (not the
// whole bucket, which may hold every user of a hit):
//
//	0x40 | kind | bucket key | start (8 bytes) → uvarint n | n × uvarint gap
//
// A chunk holds ids ≥ start and < the next chunk's start, each gap from
// the previous id (the first from start). A chunk past maxChunk ids is
// split in halves; an empty one is deleted.
const maxChunk = 256

// Stage2 is stage 2 of the similarity indexes on one partition of the
// repartition topic: it keeps the items and bucket members of its keys.
// Within an interval the last change of a key wins (a key's changes come
// from one stage-1 partition, in order).
type Stage2 struct {
	ix      *Index
	store   *state.Store
	items   map[itemRef][]byte
	members map[bucketRef]map[int64]bool // id → member (join) or not (leave)
	decoded []entry
}

type itemRef struct {
	kind Kind
	id   int64
}

type bucketRef struct {
	kind Kind
	b    lsh.Bucket
}

func (r bucketRef) compare(o bucketRef) int {
	return cmp.Or(cmp.Compare(r.kind, o.kind), compareBuckets(r.b, o.b))
}

func (r bucketRef) prefix(dst []byte) []byte {
	return r.b.AppendKey(append(dst, tableMember, byte(r.kind)))
}

// NewStage2 returns the stage-2 task of a partition over its store.
func (ix *Index) NewStage2(s *state.Store) *Stage2 {
	return &Stage2{ix: ix, store: s, items: map[itemRef][]byte{}, members: map[bucketRef]map[int64]bool{}}
}

// Process takes one similar-index record; a malformed one is an error and
// changes nothing.
func (t *Stage2) Process(rec *kgo.Record) error {
	// NB: decode the whole record before applying any of it.
	es, err := parse(rec.Value, t.decoded[:0])
	if err != nil {
		return err
	}
	t.decoded = es
	for _, e := range es {
		if e.op == opItem {
			t.items[itemRef{e.kind, e.id}] = append([]byte{}, e.item...)
			continue
		}
		ref := bucketRef{e.kind, e.bucket}
		m := t.members[ref]
		if m == nil {
			m = map[int64]bool{}
			t.members[ref] = m
		}
		m[e.id] = e.op == opJoin
	}
	return nil
}

// Prepare writes the interval's changes.
func (t *Stage2) Prepare(out *topology.Output) error {
	var key []byte
	for _, ref := range slices.SortedFunc(maps.Keys(t.items), func(a, b itemRef) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.id, b.id))
	}) {
		out.Put(itemStoreKey(key[:0], ref.kind, ref.id), t.items[ref])
	}
	clear(t.items)
	if len(t.members) == 0 {
		return nil
	}
	r, err := t.store.NewSortedReader()
	if err != nil {
		return err
	}
	defer r.Close()
	for _, ref := range slices.SortedFunc(maps.Keys(t.members), bucketRef.compare) {
		if err := t.apply(r, out, ref, t.members[ref]); err != nil {
			return err
		}
	}
	clear(t.members)
	return nil
}

// chunk is a stored chunk being changed: its key's start, the start it
// had in the store (−1: new), and its ids.
type chunk struct {
	start, stored int64
	ids           []int64
}

// apply changes the chunks of one bucket: it loads those that the
// changed ids fall in, applies the joins and leaves, and writes them back
// split, re-keyed or deleted as needed.
func (t *Stage2) apply(r *state.SortedReader, out *topology.Output, ref bucketRef, ops map[int64]bool) error {
	ids := slices.Sorted(maps.Keys(ops))
	prefix := ref.prefix(nil)
	chunks, err := loadChunks(r, prefix, ids[0], ids[len(ids)-1])
	if err != nil {
		return err
	}
	for _, id := range ids {
		// The chunk of id: the last one starting at or before it (the
		// first, re-keyed to start at id, when id comes before all).
		j, _ := slices.BinarySearchFunc(chunks, id, func(c chunk, id int64) int { return cmp.Compare(c.start, id+1) })
		j--
		switch {
		case len(chunks) == 0:
			chunks = []chunk{{start: id, stored: -1}}
			j = 0
		case j < 0:
			j = 0
			chunks[0].start = id
		}
		c := &chunks[j]
		i, found := slices.BinarySearch(c.ids, id)
		switch {
		case ops[id] && !found:
			c.ids = slices.Insert(c.ids, i, id)
		case !ops[id] && found:
			c.ids = slices.Delete(c.ids, i, i+1)
		}
	}
	var key, val []byte
	for _, c := range chunks {
		if c.stored >= 0 && (c.stored != c.start || len(c.ids) == 0) {
			out.Delete(state.AppendUint64(append(key[:0], prefix...), uint64(c.stored)))
		}
		for len(c.ids) > 0 {
			n := len(c.ids)
			if n > maxChunk {
				n /= 2
			}
			key = state.AppendUint64(append(key[:0], prefix...), uint64(c.start))
			out.Put(key, appendChunk(val[:0], c.start, c.ids[:n]))
			c.ids = c.ids[n:]
			if len(c.ids) > 0 {
				c.start = c.ids[0]
			}
		}
	}
	return nil
}

// floorSteps is how many chunks starting at or before the first changed
// id loadChunks steps over, from the bucket's first, before it seeks
// back from that id instead: most buckets have a chunk or two, and one
// backward seek in Pebble (every level of the store) cost more than a
// forward seek and a few steps.
const floorSteps = 4

// loadChunks reads the chunks of the bucket with key prefix that ids in
// [lo, hi] fall in, in start order: the last starting at or before lo (or
// the first, when none does) and those starting in (lo, hi].
func loadChunks(r *state.SortedReader, prefix []byte, lo, hi int64) ([]chunk, error) {
	var (
		chunks []chunk
		// the last chunk so far that starts at or before lo
		floorStart int64
		floorVal   []byte
		hasFloor   bool
		steps      int
		seekFloor  bool // too many such chunks: seek back instead
		derr       error
	)
	err := r.Scan(prefix, func(k, v []byte) bool {
		start, err := chunkStart(k, prefix)
		if err != nil {
			derr = err
			return false
		}
		if start <= lo {
			if steps++; steps > floorSteps {
				seekFloor = true
				return false
			}
			floorStart, floorVal, hasFloor = start, append(floorVal[:0], v...), true
			return true
		}
		if hasFloor {
			hasFloor = false
			if derr = addChunk(&chunks, floorStart, floorVal); derr != nil {
				return false
			}
		}
		if start > hi && len(chunks) > 0 {
			return false
		}
		derr = addChunk(&chunks, start, v)
		return derr == nil
	})
	switch {
	case err != nil:
		return nil, err
	case derr != nil:
		return nil, derr
	case seekFloor:
		return loadChunksFloor(r, prefix, lo, hi)
	case hasFloor:
		derr = addChunk(&chunks, floorStart, floorVal)
	}
	return chunks, derr
}

// loadChunksFloor is loadChunks for a bucket with many chunks before lo:
// it seeks back from lo.
func loadChunksFloor(r *state.SortedReader, prefix []byte, lo, hi int64) ([]chunk, error) {
	var chunks []chunk
	var derr error
	err := r.ScanFloor(prefix, state.AppendUint64(slices.Clone(prefix), uint64(lo)+1), func(k, v []byte) bool {
		start, err := chunkStart(k, prefix)
		if err != nil {
			derr = err
			return false
		}
		if start > hi && len(chunks) > 0 {
			return false
		}
		derr = addChunk(&chunks, start, v)
		return derr == nil
	})
	if err != nil {
		return nil, err
	}
	return chunks, derr
}

// chunkStart returns the start of the chunk key k of the bucket with key
// prefix.
func chunkStart(k, prefix []byte) (int64, error) {
	if len(k) != len(prefix)+8 {
		return 0, corrupt("chunk key of %d bytes", len(k))
	}
	return int64(state.Uint64(k, len(prefix))), nil
}

// addChunk decodes the chunk value v of the chunk keyed start and appends
// it to *chunks.
func addChunk(chunks *[]chunk, start int64, v []byte) error {
	ids, err := decodeChunk(v, start)
	if err != nil {
		return err
	}
	*chunks = append(*chunks, chunk{start: start, stored: start, ids: ids})
	return nil
}

func appendChunk(dst []byte, start int64, ids []int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	prev := start
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, uint64(id-prev))
		prev = id
	}
	return dst
}

// decodeChunk decodes a chunk value of a chunk keyed start.
func decodeChunk(b []byte, start int64) ([]int64, error) {
	return decodeIDs(b, start, -1)
}

// decodeIDs decodes the ids of a chunk value, at most limit of them
// (limit < 0: all).
func decodeIDs(b []byte, start int64, limit int) ([]int64, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n == 0 || n > uint64(len(b)) {
		return nil, corrupt("chunk size")
	}
	b = b[w:]
	if limit >= 0 {
		n = min(n, uint64(limit))
	}
	ids := make([]int64, 0, n)
	prev := start
	for i := range n {
		gap, w := binary.Uvarint(b)
		if w <= 0 || (i > 0 && gap == 0) {
			return nil, corrupt("chunk member")
		}
		b = b[w:]
		prev += int64(gap)
		ids = append(ids, prev)
	}
	return ids, nil
}

func itemStoreKey(dst []byte, k Kind, id int64) []byte {
	return state.AppendUint64(append(dst, tableItem, byte(k)), uint64(id))
}
