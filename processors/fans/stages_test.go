package fans

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

const (
	stageSources    = 3
	stagePartitions = 4
	stageTopic      = "deltas"
)

func memStore(t *testing.T, name string) *state.Store {
	t.Helper()
	s, err := state.Open(name, state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func apply(t *testing.T, s *state.Store, out *topology.Output) {
	t.Helper()
	b := s.NewBatch()
	for k, v := range out.Changes() {
		var err error
		if v == nil {
			err = b.Delete(k)
		} else {
			err = b.Set(k, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
}

// TestStages runs both stages over a random log in commit intervals of a
// second (a fake clock; users are published 3 s after they became
// pending, or after an interval without listens), making new collectors
// and tasks from their stores now and then (as after a restart or an
// aborted transaction); once no user is pending, it checks every zone and
// some cells against the counts recomputed from the definitions.
func TestStages(t *testing.T) {
	p, err := NewProcessor(Config{MinPlays: 2, Resolutions: []int{5, 9}, Delay: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var users, counts []*state.Store
	for i := range stageSources {
		users = append(users, memStore(t, fmt.Sprint("u", i)))
	}
	for i := range stagePartitions {
		counts = append(counts, memStore(t, fmt.Sprint("c", i)))
	}
	var collectors []*Stage1
	var tasks []*Stage2
	clock := time.Unix(1_700_000_000, 0)
	restart := func() {
		collectors, tasks = collectors[:0], tasks[:0]
		for _, s := range users {
			c, err := NewStage1(p, s, stageTopic, stagePartitions)
			if err != nil {
				t.Fatal(err)
			}
			c.now = func() time.Time { return clock }
			collectors = append(collectors, c)
		}
		for _, s := range counts {
			tasks = append(tasks, NewStage2(s))
		}
	}
	restart()
	// interval ends a commit interval; idle: no listen came in it.
	interval := func(idle bool) {
		for i, c := range collectors {
			var out topology.Output
			if err := c.Prepare(&out, idle); err != nil {
				t.Fatal(err)
			}
			apply(t, users[i], &out)
			for _, rec := range out.Records() {
				if err := tasks[rec.Partition].Process(rec); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, task := range tasks {
			var out topology.Output
			if err := task.Prepare(&out); err != nil {
				t.Fatal(err)
			}
			apply(t, counts[i], &out)
		}
		clock = clock.Add(time.Second)
	}
	// pending counts the pending users by their summaries, checked
	// against their markers.
	pending := func() (n int64) {
		for _, s := range users {
			k, oldest, err := PendingUsers(s)
			if err != nil {
				t.Fatal(err)
			}
			var markers int64
			var first time.Time
			err = processors.ScanPending(s, tablePending, clock, func(_ int64, since time.Time) {
				if markers == 0 || since.Before(first) {
					first = since
				}
				markers++
			})
			if err != nil {
				t.Fatal(err)
			}
			if k != markers || !oldest.Equal(first) {
				t.Fatalf("pending summary %d since %v, markers %d since %v", k, oldest, markers, first)
			}
			n += k
		}
		return n
	}
	r := rand.New(rand.NewPCG(3, 4))
	places := []loc{berlin, paris, {berlin.lat + 0.001, berlin.lng}, {48.1, 11.6}}
	var log []events.Listen
	for step := range 60 {
		for range 50 {
			l := events.Listen{UserID: 1 + r.Int64N(40), SongID: 1, ArtistID: 1 + r.Int64N(5), TS: r.Int64N(1_000)}
			if r.IntN(2) == 0 {
				at := places[r.IntN(len(places))]
				l.HasLoc, l.Lat, l.Lng = true, at.lat, at.lng
			}
			log = append(log, l)
			if err := collectors[l.UserID%stageSources].Add(&l); err != nil {
				t.Fatal(err)
			}
		}
		interval(false)
		pending()
		if step%7 == 3 {
			restart()
		}
	}
	if pending() == 0 {
		t.Fatal("no user pending after the last listens")
	}
	due := 0
	for _, c := range collectors {
		switch at := c.NextDue(); {
		case at.IsZero():
		case at.After(clock.Add(3 * time.Second)):
			t.Fatalf("NextDue = %v, more than the delay after %v", at, clock)
		default:
			due++
		}
	}
	if due == 0 {
		t.Fatal("no collector has a user due, though users are pending")
	}
	interval(true)
	if n := pending(); n != 0 {
		t.Fatalf("%d users pending after an interval without listens", n)
	}
	for _, c := range collectors {
		if due := c.NextDue(); !due.IsZero() {
			t.Fatalf("with no user pending, NextDue = %v", due)
		}
	}
	want := fanCounts(log, p.res, 2)
	var got []Delta
	for artist := int64(1); artist <= 5; artist++ {
		part := kgo.StickyKeyPartitioner(nil).ForTopic(stageTopic).Partition(&kgo.Record{Key: rollups.PartitionKey(nil, rollups.Artist, artist)}, stagePartitions)
		for _, res := range p.res {
			zs, err := Zones(counts[part], artist, res, 1, 1_000)
			if err != nil {
				t.Fatal(err)
			}
			for i, z := range zs {
				if i > 0 && (z.Fans > zs[i-1].Fans || z.Fans == zs[i-1].Fans && z.Cell < zs[i-1].Cell) {
					t.Fatalf("zones of artist %d not by fans, then cell: %v", artist, zs)
				}
				got = append(got, Delta{Artist: artist, Res: res, Cell: z.Cell, N: z.Fans})
				n, err := CellFans(counts[part], artist, z.Cell)
				if err != nil || n != z.Fans {
					t.Fatalf("cell %s of artist %d: %d fans (%v), its zone says %d", z.Cell, artist, n, err, z.Fans)
				}
			}
		}
	}
	got = sumDeltas(got)
	if !slices.Equal(got, want) {
		t.Fatalf("fan counts\n %v\nwant\n %v", got, want)
	}
	if len(want) == 0 {
		t.Fatal("no fans at all: the test checks nothing")
	}
}
