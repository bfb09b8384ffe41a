package topology

// DefaultMaxRecord is the size a Packer keeps the records it sends under
// by default: half the producer's batch limit (1 MiB), so that the entry
// that crosses it still fits.
const DefaultMaxRecord = 512 << 10

// Head appends the header of a record for partition p that holds n
// entries; last is false for every record of p but its last of a Flush.
// A format with a header that says "up to here" (a watermark, an event
// time) writes it in the last record only, so that a stage-2 partition
// that commits between two of them never sees it before every entry it
// covers.
type Head func(dst []byte, p int32, n int, last bool) []byte

// Packer packs the entries a stage-1 task sends in one commit interval
// into records for the partitions of a repartition topic: one record per
// partition that has entries, several when they pass the size cap. Every
// record is a header (Head) followed by whole entries, so stage 2 parses
// each record alone.
//
// The cap is checked before each entry: an entry larger than the room
// between the cap and the producer's limit cannot be sent, so formats
// keep their entries small (a few KiB).
//
// A Packer is used by one goroutine (its task's).
type Packer struct {
	topic string
	head  Head
	max   int
	parts []packed
	out   *Output
	buf   []byte
}

type packed struct {
	body []byte
	n    int
	sent bool // a record went out in this Flush's interval already
}

// NewPacker returns a packer of records for topic, which has the given
// number of partitions and is one of the runner's Config.ManualTopics;
// maxRecord ≤ 0 is DefaultMaxRecord.
func NewPacker(topic string, partitions int32, head Head, maxRecord int) *Packer {
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecord
	}
	return &Packer{topic: topic, head: head, max: maxRecord, parts: make([]packed, partitions)}
}

// Partitions is the partition count of the topic.
func (pk *Packer) Partitions() int { return len(pk.parts) }

// Partition is the partition a record keyed key would go to (murmur2, as
// KeyPartition): where the entries of key go.
func (pk *Packer) Partition(key []byte) int32 { return KeyPartition(key, len(pk.parts)) }

// Start begins an interval's entries, sent into out.
func (pk *Packer) Start(out *Output) { pk.out = out }

// To returns the body partition p's next entry is to be appended to.
// When p's record has reached the cap, it is sent first and a new one
// begun. REQUIRES: Start called.
func (pk *Packer) To(p int32) *[]byte {
	pp := &pk.parts[p]
	if len(pp.body) >= pk.max {
		pk.send(p, false)
	}
	pp.n++
	return &pp.body
}

// Flush sends the records left and ends the interval. With every, each
// partition that got no record in the interval gets one with no entries
// (a header only): for formats whose header every stage-2 partition
// needs each interval.
func (pk *Packer) Flush(every bool) {
	for p := range pk.parts {
		pp := &pk.parts[p]
		if pp.n > 0 || (every && !pp.sent) {
			pk.send(int32(p), true)
		}
		pp.sent = false
	}
	pk.out = nil
}

func (pk *Packer) send(p int32, last bool) {
	pp := &pk.parts[p]
	pk.buf = append(pk.head(pk.buf[:0], p, pp.n, last), pp.body...)
	pk.out.SendTo(pk.topic, p, nil, pk.buf)
	pp.body, pp.n, pp.sent = pp.body[:0], 0, true
}
