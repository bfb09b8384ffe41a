package topology

import (
	"iter"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Output collects what a task hands to one transaction: records for other
// topics and changes to its store. Keys and values are copied, so callers
// may reuse their buffers.
type Output struct {
	records []*kgo.Record
	changes []change
	arena   []byte
}

type change struct {
	key, value []byte // value nil: delete
}

// Send adds a record for topic, partitioned by murmur2 of key (as the Java
// client and franz-go's default partitioner do).
func (o *Output) Send(topic string, key, value []byte) {
	o.records = append(o.records, &kgo.Record{Topic: topic, Key: o.copy(key), Value: o.copy(value)})
}

// SendTo adds a record for partition p of topic, which must be one of
// the runner's Config.ManualTopics.
func (o *Output) SendTo(topic string, p int32, key, value []byte) {
	o.records = append(o.records, &kgo.Record{Topic: topic, Partition: p, Key: o.copy(key), Value: o.copy(value)})
}

// Put sets key to value in the task's store (and its changelog).
func (o *Output) Put(key, value []byte) {
	o.changes = append(o.changes, change{key: o.copy(key), value: o.copy(value)})
	if value == nil {
		o.changes[len(o.changes)-1].value = []byte{}
	}
}

// Delete removes key from the task's store (a tombstone in its changelog).
func (o *Output) Delete(key []byte) {
	o.changes = append(o.changes, change{key: o.copy(key)})
}

// copy appends b to the arena and returns the copy. Earlier copies stay
// valid when the arena grows: they keep the old backing array.
func (o *Output) copy(b []byte) []byte {
	if cap(o.arena)-len(o.arena) < len(b) {
		o.arena = make([]byte, 0, max(64<<10, 2*len(b)))
	}
	start := len(o.arena)
	o.arena = append(o.arena, b...)
	return o.arena[start:len(o.arena):len(o.arena)]
}

// reset empties o for the next transaction. The records and arena are
// dropped, not reused: the producer may still hold them.
func (o *Output) reset() {
	o.records = nil
	o.changes = o.changes[:0]
	o.arena = nil
}

// Records are the records sent so far, for tests of tasks.
func (o *Output) Records() []*kgo.Record { return o.records }

// Changes yields the store changes so far (a nil value is a delete), for
// tests of tasks.
func (o *Output) Changes() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for _, c := range o.changes {
			if !yield(c.key, c.value) {
				return
			}
		}
	}
}

// KeyPartition is the partition of n that a record keyed key goes to
// under murmur2 partitioning, as the Java client and franz-go's
// StickyKeyPartitioner place keyed records, without allocating.
func KeyPartition(key []byte, n int) int32 {
	return int32(int(murmur2(key)&0x7fffffff) % n)
}

// murmur2 is the Kafka flavour of MurmurHash2 (seed 0x9747b28c).
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		b = b[4:]
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
