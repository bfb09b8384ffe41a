package similar

import (
	"maps"
	"slices"

	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// IndexTask is stage 2 of the similarity indexes on one partition of the
// repartition topic: it keeps the items and bucket members of its keys.
// Within an interval the last change of a key wins (a key's changes come
// from one stage-1 partition, in order).
type IndexTask struct {
	ix      *Index
	pending map[string][]byte // store key → value; nil: delete
	decoded []entry
	key     []byte
}

// NewIndexTask returns the stage-2 task of a partition.
func (ix *Index) NewIndexTask() *IndexTask {
	return &IndexTask{ix: ix, pending: map[string][]byte{}}
}

// Process takes one similar-index record; a malformed one is an error and
// changes nothing.
func (t *IndexTask) Process(rec *kgo.Record) error {
	// NB: decode the whole record before applying any of it.
	es, err := parse(rec.Value, t.decoded[:0])
	if err != nil {
		return err
	}
	t.decoded = es
	for _, e := range es {
		switch e.op {
		case opItem:
			t.key = itemStoreKey(t.key[:0], e.kind, e.id)
			t.pending[string(t.key)] = append([]byte{}, e.item...)
		case opJoin:
			t.key = memberStoreKey(t.key[:0], e.kind, e.bucket.AppendKey(nil), e.id)
			t.pending[string(t.key)] = memberValue
		case opLeave:
			t.key = memberStoreKey(t.key[:0], e.kind, e.bucket.AppendKey(nil), e.id)
			t.pending[string(t.key)] = nil
		}
	}
	return nil
}

// Prepare writes the interval's changes, in key order.
func (t *IndexTask) Prepare(out *topology.Output) {
	for _, k := range slices.Sorted(maps.Keys(t.pending)) {
		if v := t.pending[k]; v == nil {
			out.Delete([]byte(k))
		} else {
			out.Put([]byte(k), v)
		}
	}
	clear(t.pending)
}

// memberValue is the value of a bucket member: one byte, not an empty
// value, which some Kafka clients read back from a changelog as a
// tombstone.
var memberValue = []byte{1}

func itemStoreKey(dst []byte, k Kind, id int64) []byte {
	return state.AppendUint64(append(dst, tableItem, byte(k)), uint64(id))
}

// memberStoreKey is tableMember | kind | bucket key | id: a bucket's
// members are one prefix, in ascending id order.
func memberStoreKey(dst []byte, k Kind, bucket []byte, id int64) []byte {
	return state.AppendUint64(append(append(dst, tableMember, byte(k)), bucket...), uint64(id))
}
