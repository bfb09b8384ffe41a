package similar

import (
	"encoding/binary"

	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// A similar-index record is Format followed by entries, each
//
//	op (1 byte) | kind (1 byte) | id (8 bytes, big-endian) | body
//
// where the body of opItem is uvarint length | the item (a signature or a
// vector), and that of opJoin and opLeave the lsh.KeyLen-byte bucket key.
const (
	opItem  byte = 1
	opJoin  byte = 2
	opLeave byte = 3
)

// entry is one decoded entry of a record; item aliases the record.
type entry struct {
	op     byte
	kind   Kind
	id     int64
	bucket lsh.Bucket
	item   []byte
}

// emitter collects the entries of one Prepare for the stage-2 partitions
// and sends them into out (topology.Packer: several records per partition
// past its size cap).
type emitter struct {
	pk  *topology.Packer
	key []byte
}

func newEmitter(topic string, partitions int32) emitter {
	return emitter{pk: topology.NewPacker(topic, partitions, recordHead, 0)}
}

// recordHead is the header of a similar-index record: its format byte.
func recordHead(dst []byte, _ int32, _ int, _ bool) []byte { return append(dst, Format) }

// to returns the record body of the partition key routes to.
func (e *emitter) to(key []byte) *[]byte { return e.pk.To(e.pk.Partition(key)) }

func appendHead(dst []byte, op byte, k Kind, id int64) []byte {
	return state.AppendUint64(append(dst, op, byte(k)), uint64(id))
}

// item sends id's new item to the partition of its item key.
func (e *emitter) item(k Kind, id int64, item []byte) {
	e.key = ItemKey(e.key[:0], k, id)
	p := e.to(e.key)
	*p = append(binary.AppendUvarint(appendHead(*p, opItem, k, id), uint64(len(item))), item...)
}

// members sends id's leaves and joins to the partitions of the buckets.
func (e *emitter) members(k Kind, id int64, left, joined []lsh.Bucket) {
	for _, b := range left {
		e.key = BucketKey(e.key[:0], k, b)
		p := e.to(e.key)
		*p = b.AppendKey(appendHead(*p, opLeave, k, id))
	}
	for _, b := range joined {
		e.key = BucketKey(e.key[:0], k, b)
		p := e.to(e.key)
		*p = b.AppendKey(appendHead(*p, opJoin, k, id))
	}
}

// start begins a Prepare into out.
func (e *emitter) start(out *topology.Output) { e.pk.Start(out) }

// flush sends the records left into out and ends the Prepare.
func (e *emitter) flush() { e.pk.Flush(false) }

// parse decodes a whole similar-index record; it never panics.
func parse(v []byte, dst []entry) ([]entry, error) {
	if !IsDelta(v) {
		return nil, corrupt("not a similar-index record")
	}
	b := v[1:]
	for len(b) > 0 {
		if len(b) < 10 {
			return nil, corrupt("truncated entry")
		}
		e := entry{op: b[0], kind: Kind(b[1]), id: int64(state.Uint64(b, 2))}
		if e.kind != Users && e.kind != Songs {
			return nil, corrupt("unknown kind %d", b[1])
		}
		if e.id < 1 {
			return nil, corrupt("id %d", e.id)
		}
		b = b[10:]
		switch e.op {
		case opItem:
			n, w := binary.Uvarint(b)
			if w <= 0 || n > uint64(len(b)-w) {
				return nil, corrupt("item length")
			}
			e.item = b[w : w+int(n)]
			b = b[w+int(n):]
		case opJoin, opLeave:
			bk, err := lsh.ParseKey(b)
			if err != nil {
				return nil, corrupt("bucket key")
			}
			e.bucket = bk
			b = b[lsh.KeyLen:]
		default:
			return nil, corrupt("unknown op %d", e.op)
		}
		dst = append(dst, e)
	}
	return dst, nil
}
