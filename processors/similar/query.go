package similar

import (
	"cmp"
	"context"
	"iter"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/state"
)

// Source reads the stage-2 partitions of the index, wherever they are:
// the partitions of one instance's stores, or those of several instances
// (scatter and gather). Its methods split their keys by partition with
// ItemKey and BucketKey, and read each partition with the Index's
// Members and Score.
type Source interface {
	// Members returns, for each bucket, its first limit members in
	// ascending id order.
	Members(ctx context.Context, k Kind, buckets []lsh.Bucket, limit int) ([][]int64, error)
	// Score scores the items of ids against query (an item of kind k)
	// and returns the best n of them; ids without an item are left out.
	Score(ctx context.Context, k Kind, query []byte, ids []int64, n int) ([]lsh.Scored, error)
}

// Similar answers "the n items most similar to item id", best first
// (ties by id): candidates from the buckets of item (id's stored item),
// scored against it.
func (ix *Index) Similar(ctx context.Context, src Source, k Kind, id int64, item []byte, n int) ([]lsh.Scored, error) {
	buckets, err := ix.buckets(k, item, nil)
	if err != nil {
		return nil, corrupt("%s %d: %v", k, id, err)
	}
	members, err := src.Members(ctx, k, buckets, ix.cfg.Limits.PerBucket+1)
	if err != nil {
		return nil, err
	}
	c, ok := ix.cands.Get().(*lsh.Candidates)
	if ok {
		c.Reset(id)
	} else {
		c = lsh.NewCandidates(id, ix.cfg.Limits)
	}
	defer ix.cands.Put(c)
	for _, m := range members {
		c.Scan(slices.Values(m))
	}
	if len(c.IDs()) == 0 {
		return nil, nil
	}
	minShared := 1
	if k == Users {
		minShared = ix.cfg.MinBands
	}
	scored, err := src.Score(ctx, k, item, c.Best(n, minShared), n)
	if err != nil {
		return nil, err
	}
	return lsh.TopK(scored, n), nil
}

// IsItemKey reports whether key is that of an item (a user's signature,
// a song's vector) in a stage-2 store: what queries score, worth keeping
// in a read cache from the moment it is written (state.WithReadCache).
func IsItemKey(key []byte) bool { return len(key) > 0 && key[0] == tableItem }

// Item reads the stored item of id from s, a stage-2 store, through its
// read cache; the item must not be modified.
func (ix *Index) Item(s *state.Store, k Kind, id int64) ([]byte, bool, error) {
	return s.CachedGet(itemStoreKey(nil, k, id))
}

// Members reads the first limit members of each bucket from s, a stage-2
// store, in ascending id order: out[i] are those of buckets[i]. The
// chunks are read through the store's read cache (a bucket is read by
// the query of each of its members), the others with one iterator.
func (ix *Index) Members(s *state.Store, k Kind, buckets []lsh.Bucket, limit int) ([][]int64, error) {
	out := make([][]int64, len(buckets))
	r := s.NewCachedReader()
	defer r.Close()
	var prefix []byte
	for i, b := range buckets {
		prefix = bucketRef{k, b}.prefix(prefix[:0])
		var ids []int64
		var derr error
		err := r.Scan(prefix, func(key, v []byte) bool {
			if len(key) != len(prefix)+8 {
				derr = corrupt("chunk key of %d bytes", len(key))
				return false
			}
			var chunk []int64
			if chunk, derr = decodeIDs(v, int64(state.Uint64(key, len(prefix))), limit-len(ids)); derr != nil {
				return false
			}
			ids = append(ids, chunk...)
			return len(ids) < limit
		})
		if err != nil {
			return nil, err
		}
		if derr != nil {
			return nil, derr
		}
		out[i] = ids
	}
	return out, nil
}

func compareBuckets(a, b lsh.Bucket) int {
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	return cmp.Compare(a.Hash, b.Hash)
}

// ScoreStores scores the items of ids against query, an item of kind k,
// and returns the best n: stores[i], a stage-2 store, holds the item of
// ids[i], or is nil for an id read elsewhere (left out). The items are
// read through the stores' read caches: an item is scored for many
// queries.
func (ix *Index) ScoreStores(stores []*state.Store, k Kind, query []byte, ids []int64, n int) ([]lsh.Scored, error) {
	var (
		key []byte
		err error
	)
	// read yields the stored items of ids (the rankers keep no
	// candidate's item).
	read := func(yield func(id int64, item []byte) bool) {
		for i, id := range ids {
			if stores[i] == nil {
				continue
			}
			key = itemStoreKey(key[:0], k, id)
			v, found, gerr := stores[i].CachedGet(key)
			if gerr != nil {
				err = gerr
				return
			}
			if found && !yield(id, v) {
				return
			}
		}
	}
	var out []lsh.Scored
	if k == Users {
		var serr error
		out, serr = ix.scoreUsers(query, read, n)
		if err == nil {
			err = serr
		}
	} else {
		q, perr := ix.vector(query)
		if perr != nil {
			return nil, corrupt("query vector: %v", perr)
		}
		out = lsh.RankCosine(q, decoded(read, make([]float32, len(q)), decodeVector, &err), n)
	}
	return out, err
}

// decoded yields the items of read decoded into buf; a corrupt item ends
// the sequence with *errp set.
func decoded[T any](read iter.Seq2[int64, []byte], buf T, dec func(T, []byte) error, errp *error) iter.Seq2[int64, T] {
	return func(yield func(int64, T) bool) {
		for id, b := range read {
			if err := dec(buf, b); err != nil {
				*errp = corrupt("item %d: %v", id, err)
				return
			}
			if !yield(id, buf) {
				return
			}
		}
	}
}

// decodeVector decodes a stored vector into v, of its dimension.
func decodeVector(v []float32, b []byte) error {
	_, err := events.ParseVector(v, b, len(v))
	return err
}

// MembersStores is Members over several stores: stores[i] holds the
// members of buckets[i], or is nil for a bucket read elsewhere (out[i]
// stays nil).
func (ix *Index) MembersStores(stores []*state.Store, k Kind, buckets []lsh.Bucket, limit int) ([][]int64, error) {
	out := make([][]int64, len(buckets))
	for s, idx := range byStore(stores) {
		bs := make([]lsh.Bucket, len(idx))
		for j, i := range idx {
			bs[j] = buckets[i]
		}
		got, err := ix.Members(s, k, bs, limit)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			out[i] = got[j]
		}
	}
	return out, nil
}

// byStore yields each store of stores (nil ones left out) with the
// indices it holds, in the order the stores first occur.
func byStore(stores []*state.Store) iter.Seq2[*state.Store, []int] {
	return func(yield func(*state.Store, []int) bool) {
		var order []*state.Store
		idx := map[*state.Store][]int{}
		for i, s := range stores {
			if s == nil {
				continue
			}
			if _, ok := idx[s]; !ok {
				order = append(order, s)
			}
			idx[s] = append(idx[s], i)
		}
		for _, s := range order {
			if !yield(s, idx[s]) {
				return
			}
		}
	}
}
