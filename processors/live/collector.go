package live

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/topology"
)

// Collector is stage 1 of the live counts, for one partition of listens
// (the source): it gathers each (song, window)'s plays and users for one
// commit interval and sends them, with the source's largest event time,
// to the stage-2 partitions of the songs (those of the rollups).
type Collector struct {
	sizes      []int64 // window sizes, ms
	source     int32
	topic      string
	partitions int
	route      kgo.TopicPartitioner
	cells      cells
	maxTS      int64
	seen       bool // maxTS is set
	byPart     [][]cell
	val        []byte
	rec        kgo.Record
}

// NewCollector returns the collector of partition source of listens,
// sending to topic, which has the given number of partitions.
func NewCollector(cfg Config, source int32, topic string, partitions int32) *Collector {
	cfg = cfg.withDefaults()
	c := &Collector{
		source:     source,
		topic:      topic,
		partitions: int(partitions),
		route:      kgo.StickyKeyPartitioner(nil).ForTopic(topic),
		byPart:     make([][]cell, partitions),
	}
	for _, w := range cfg.Windows {
		c.sizes = append(c.sizes, w.Milliseconds())
	}
	return c
}

// Add counts one valid listen in each window size.
func (c *Collector) Add(l *events.Listen) {
	for _, size := range c.sizes {
		c.cells.add(cellKey{song: l.SongID, size: size, start: l.TS - l.TS%size}, 1, l.UserID)
	}
	if !c.seen || l.TS > c.maxTS {
		c.maxTS, c.seen = l.TS, true
	}
}

// Prepare sends the pending cells, one record per stage-2 partition, and
// the source's largest event time to every stage-2 partition, so that
// each can advance its watermark.
func (c *Collector) Prepare(out *topology.Output) {
	if !c.seen {
		return
	}
	for _, cl := range c.cells.sorted() {
		c.rec.Key = rollups.PartitionKey(c.rec.Key[:0], rollups.Song, cl.k.song)
		p := c.route.Partition(&c.rec, c.partitions)
		c.byPart[p] = append(c.byPart[p], cl)
	}
	for p, list := range c.byPart {
		c.val = appendDeltaHeader(c.val[:0], c.source, c.maxTS, c.seen, len(list))
		for i := range list {
			c.val = appendCell(c.val, &list[i])
		}
		out.SendTo(c.topic, int32(p), nil, c.val)
		c.byPart[p] = list[:0]
	}
	c.cells.reset()
}
