package live

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
	"github.com/kappa-stream/kappa/windows"
)

// Stage1 is stage 1 of the live counts, for one partition of listens
// (the source). It decides, in log order, whether each listen is on time
// for its windows (see the package doc: the partition's stream time, the
// largest event time read before the listen, is below the window's end
// plus the grace), gathers the on-time plays and users of each (song,
// window) for one commit interval, and sends them with the stream time
// to the stage-2 partitions of the songs (those of the rollups).
//
// The stream time is kept in the partition's stage-1 store (table 0x21),
// written in the transaction that sends it, so a part made anew after a
// restart or an aborted transaction judges the next listens as the first
// one would have: lateness depends on the log alone, never on batching.
type Stage1 struct {
	sizes   []int64 // window sizes, ms
	grace   int64   // ms
	source  int32
	store   *state.Store
	metrics *Metrics
	pk      *topology.Packer
	cells   cells
	// stream is the partition's stream time: the largest event time read
	// in it (windows.NoWatermark before any); sent is the one stage 2 and
	// the store have (as of the last Prepare).
	stream, sent int64
	late         int64 // listen-windows judged late since the last Prepare
	key          []byte
}

// NewStage1 returns the stage-1 part of partition source of listens over
// its store, sending to topic, which has the given number of partitions;
// m counts the late listens (nil: no-op counters).
func NewStage1(cfg Config, source int32, s *state.Store, topic string, partitions int32, m *Metrics) (*Stage1, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if m == nil {
		var err error
		if m, err = NewMetrics(nil); err != nil {
			return nil, err
		}
	}
	c := &Stage1{source: source, store: s, metrics: m, grace: cfg.Grace.Milliseconds(), stream: windows.NoWatermark}
	c.pk = topology.NewPacker(topic, partitions, c.head, 0)
	for _, w := range cfg.Windows {
		c.sizes = append(c.sizes, w.Milliseconds())
	}
	v, found, err := s.Get(nil, streamKey)
	if err != nil {
		return nil, fmt.Errorf("live: stream time of partition %d: %w", source, err)
	}
	if found {
		if len(v) != 8 {
			return nil, fmt.Errorf("live: stream time of partition %d: a value of %d bytes", source, len(v))
		}
		c.stream = int64(binary.BigEndian.Uint64(v))
	}
	c.sent = c.stream
	return c, nil
}

// streamKey is the stage-1 store's key of the partition's stream time.
var streamKey = []byte{tableStream}

// head starts a record of n cells; the stream time goes in the last
// record of a partition only, so that stage 2 never sees it before a
// cell it covers.
func (c *Stage1) head(dst []byte, _ int32, n int, last bool) []byte {
	return appendDeltaHeader(dst, c.source, c.stream, c.stream != windows.NoWatermark && last, n)
}

// Add counts one valid listen in each window size it is on time for:
// window w takes it when the stream time before it is below w's end plus
// the grace. Then the listen's time joins the stream time.
func (c *Stage1) Add(l *events.Listen) error {
	for _, size := range c.sizes {
		start := l.TS - l.TS%size
		if c.stream >= start+size+c.grace {
			c.late++
			continue
		}
		c.cells.add(cellKey{song: l.SongID, size: size, start: start}, 1, l.UserID)
	}
	c.stream = max(c.stream, l.TS)
	return nil
}

// NextDue implements processors.Stage1: nothing is due without a listen.
func (c *Stage1) NextDue() time.Time { return time.Time{} }

// Prepare sends the pending cells, in key order, and the stream time to
// every stage-2 partition, so that each can close the windows every
// source has passed, and stores the stream time. An interval that moved
// neither sends nothing.
func (c *Stage1) Prepare(out *topology.Output, _ bool) error {
	if c.late > 0 {
		c.metrics.late.Add(context.Background(), c.late)
		c.late = 0
	}
	if c.cells.len() == 0 && c.stream == c.sent {
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
	if c.stream != c.sent {
		out.Put(streamKey, binary.BigEndian.AppendUint64(nil, uint64(c.stream)))
		c.sent = c.stream
	}
	return nil
}
