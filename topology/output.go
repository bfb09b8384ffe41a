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
