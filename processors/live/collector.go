package live

import (
	"time"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/topology"
)

// Stage1 is stage 1 of the live counts, for one partition of listens
// (the source): it gathers each (song, window)'s plays and users for one
// commit interval and sends them, with the source's largest event time,
// to the stage-2 partitions of the songs (those of the rollups).
type Stage1 struct {
	sizes  []int64 // window sizes, ms
	source int32
	pk     *topology.Packer
	cells  cells
	maxTS  int64
	seen   bool // maxTS is set
	key    []byte
}

// NewStage1 returns the stage-1 part of partition source of listens,
// sending to topic, which has the given number of partitions.
func NewStage1(cfg Config, source int32, topic string, partitions int32) *Stage1 {
	cfg = cfg.withDefaults()
	c := &Stage1{source: source}
	c.pk = topology.NewPacker(topic, partitions, c.head, 0)
	for _, w := range cfg.Windows {
		c.sizes = append(c.sizes, w.Milliseconds())
	}
	return c
}

// head starts a record of n cells; the source's largest event time goes
// in the last record of a partition only, so that stage 2 never sees it
// before a cell it covers.
func (c *Stage1) head(dst []byte, _ int32, n int, last bool) []byte {
	return appendDeltaHeader(dst, c.source, c.maxTS, c.seen && last, n)
}

// Add counts one valid listen in each window size.
func (c *Stage1) Add(l *events.Listen) error {
	for _, size := range c.sizes {
		c.cells.add(cellKey{song: l.SongID, size: size, start: l.TS - l.TS%size}, 1, l.UserID)
	}
	if !c.seen || l.TS > c.maxTS {
		c.maxTS, c.seen = l.TS, true
	}
	return nil
}

// NextDue implements processors.Stage1: nothing is due without a listen.
func (c *Stage1) NextDue() time.Time { return time.Time{} }

// Prepare sends the pending cells, in key order, and the source's largest
// event time to every stage-2 partition, so that each can advance its
// watermark.
func (c *Stage1) Prepare(out *topology.Output, _ bool) error {
	if !c.seen {
		return nil
	}
	c.pk.Start(out)
	for _, cl := range c.cells.sorted() {
		c.key = rollups.PartitionKey(c.key[:0], rollups.Song, cl.k.song)
		b := c.pk.To(c.pk.Partition(c.key))
		*b = appendCell(*b, &cl)
	}
	c.pk.Flush(true)
	c.cells.reset()
	return nil
}
