package topk

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/topology"
)

// TestSongRecordsCapped: an interval with more cells than one record
// holds is sent in several records below the producer's limit, which
// hold every cell once.
func TestSongRecordsCapped(t *testing.T) {
	c := NewSongCollector("deltas", 1)
	const n = 60_000
	for i := range n {
		l := events.Listen{UserID: 1, SongID: int64(i + 1), ArtistID: 7, TS: 20_000 * 86_400_000, MsPlayed: 40_000, Country: events.Country{'S', 'E'}}
		if err := c.Add(&l); err != nil {
			t.Fatal(err)
		}
	}
	var out topology.Output
	if err := c.Prepare(&out, false); err != nil {
		t.Fatal(err)
	}
	if len(out.Records()) < 2 {
		t.Fatalf("%d cells in %d record(s): want several", n, len(out.Records()))
	}
	cells := 0
	for _, rec := range out.Records() {
		if len(rec.Value) >= producerLimit {
			t.Fatalf("a record of %d bytes", len(rec.Value))
		}
		if err := parseSongCells(rec.Value, func(k songCell, plays, streams int64) {
			if k.artist() != 7 || plays != 1 || streams != 1 {
				t.Fatalf("cell of artist %d: %d/%d", k.artist(), plays, streams)
			}
			cells++
		}); err != nil {
			t.Fatal(err)
		}
	}
	if cells != n {
		t.Fatalf("%d cells sent, want %d", cells, n)
	}
}

// TestSongRecordsMalformed: a malformed record is rejected whole.
func TestSongRecordsMalformed(t *testing.T) {
	k := newSongCell(7, 20_000, 9, events.Country{'S', 'E'})
	good := append(append([]byte{SongFormat}, k[:]...), 2, 1)
	for _, bad := range [][]byte{
		nil, {0x02}, {SongFormat, 1},
		good[:len(good)-1],
		append(append([]byte{SongFormat}, k[:]...), 0, 0), // no plays
		append(append([]byte{SongFormat}, k[:]...), 1, 2), // more streams than plays
		append(good[:len(good):len(good)], k[:5]...),      // a good cell, then a torn one
	} {
		task := &SongTask{}
		if err := task.Process(&kgo.Record{Value: bad}); err == nil || len(task.cells.list) != 0 {
			t.Errorf("record %x accepted (%d cells)", bad, len(task.cells.list))
		}
	}
	task := &SongTask{}
	if err := task.Process(&kgo.Record{Value: good}); err != nil || len(task.cells.list) != 1 {
		t.Fatalf("good record: %v, %d cells", err, len(task.cells.list))
	}
}

// producerLimit is the largest record the producer sends (1 MiB).
const producerLimit = 1 << 20
