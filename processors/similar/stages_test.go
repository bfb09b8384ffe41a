package similar

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

const (
	sources    = 3
	partitions = 4
	topic      = "deltas"
)

func memStore(t testing.TB, name string, opts ...state.Opt) *state.Store {
	t.Helper()
	s, err := state.Open(name, append([]state.Opt{state.WithFS(vfs.NewMem())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// commit applies out's store changes to s, as the runtime does after the
// transaction commits.
func commit(t testing.TB, s *state.Store, out *topology.Output) {
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

// stage2 is the stage-2 partitions of a test: their stores and tasks.
type stage2 struct {
	ix     *Index
	stores []*state.Store
	tasks  []*Stage2
	route  kgo.TopicPartitioner
}

func newStage2(t testing.TB, ix *Index) *stage2 {
	s := &stage2{ix: ix, route: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
	for i := range partitions {
		// NB: a small read cache, as kappa's queries read through one
		s.stores = append(s.stores, memStore(t, fmt.Sprint("agg", i), state.WithReadCache(16<<10, IsItemKey)))
		s.tasks = append(s.tasks, ix.NewStage2(s.stores[i]))
	}
	return s
}

// deliver hands the records of a stage-1 output to the stage-2 tasks and
// commits them.
func (s *stage2) deliver(t testing.TB, out *topology.Output) {
	t.Helper()
	for _, r := range out.Records() {
		if r.Topic != topic || r.Partition < 0 || r.Partition >= partitions {
			t.Fatalf("record to %s/%d", r.Topic, r.Partition)
		}
		if err := s.tasks[r.Partition].Process(r); err != nil {
			t.Fatal(err)
		}
	}
	for p, task := range s.tasks {
		var o topology.Output
		if err := task.Prepare(&o); err != nil {
			t.Fatal(err)
		}
		commit(t, s.stores[p], &o)
	}
}

func (s *stage2) partition(key []byte) int {
	return s.route.Partition(&kgo.Record{Key: key}, partitions)
}

// checkIndex checks that the stage-2 stores hold exactly the items and
// the bucket members of want (id → item), each in its key's partition.
func (s *stage2) checkIndex(t *testing.T, k Kind, want map[int64][]byte) {
	t.Helper()
	wantMembers := map[string]bool{}
	for id, item := range want {
		bs, err := s.ix.buckets(k, item, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			wantMembers[fmt.Sprint(b, "/", id)] = true
		}
	}
	gotItems, gotMembers := map[int64][]byte{}, map[string]bool{}
	for p, st := range s.stores {
		prefix := []byte{tableItem, byte(k)}
		err := st.Scan(prefix, state.PrefixEnd(prefix), func(key, v []byte) error {
			id := int64(state.Uint64(key, 2))
			if q := s.partition(ItemKey(nil, k, id)); q != p {
				t.Errorf("%s %d's item in partition %d, its key routes to %d", k, id, p, q)
			}
			gotItems[id] = slices.Clone(v)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		prefix = []byte{tableMember, byte(k)}
		err = st.Scan(prefix, state.PrefixEnd(prefix), func(key, v []byte) error {
			b, err := lsh.ParseKey(key[2:])
			if err != nil {
				return err
			}
			if q := s.partition(BucketKey(nil, k, b)); q != p {
				t.Errorf("bucket %s in partition %d, its key routes to %d", b, p, q)
			}
			ids, err := checkChunk(key, v)
			if err != nil {
				return err
			}
			for _, id := range ids {
				gotMembers[fmt.Sprint(b, "/", id)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !maps.EqualFunc(gotItems, want, slices.Equal) {
		t.Errorf("stage 2 holds %d %ss' items, want %d (or different ones)", len(gotItems), k, len(want))
	}
	var stale, missing int
	for m := range gotMembers {
		if !wantMembers[m] {
			stale++
		}
	}
	for m := range wantMembers {
		if !gotMembers[m] {
			missing++
		}
	}
	if stale+missing > 0 || len(gotMembers) == 0 {
		t.Errorf("bucket members: %d stale, %d missing, of %d", stale, missing, len(wantMembers))
	}
}

// checkChunk decodes a stored chunk of bucket members and checks its
// shape: 1 … maxChunk ascending ids, none before the chunk's start.
func checkChunk(key, v []byte) ([]int64, error) {
	start := int64(state.Uint64(key, len(key)-8))
	ids, err := decodeChunk(v, start)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 || len(ids) > maxChunk || ids[0] < start || !slices.IsSorted(ids) {
		return nil, fmt.Errorf("chunk %x: %d ids from %d, start %d", key, len(ids), ids[0], start)
	}
	return ids, nil
}

// TestChunks joins and leaves random ids of one bucket over many
// intervals, so that its chunks split, re-key and empty, and checks after
// each interval that the bucket holds exactly the members of the model,
// in chunks of the right shape, and that Members reads them in order.
func TestChunks(t *testing.T) {
	ix, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	store := memStore(t, "chunks")
	b := lsh.Bucket{Table: 3, Hash: 0xfeed}
	rng := rand.New(rand.NewPCG(5, 6))
	model := map[int64]bool{}
	for interval := range 300 {
		task := ix.NewStage2(store)
		var rec []byte
		rec = append(rec, Format)
		for range rng.IntN(200) {
			id := 1 + rng.Int64N(3000)
			if interval < 100 {
				id = 1 + rng.Int64N(600) // dense first: splits
			}
			join := rng.IntN(3) > 0 || interval < 60
			op := opLeave
			if join {
				op = opJoin
			}
			rec = b.AppendKey(appendHead(rec, op, Users, id))
			model[id] = join
		}
		if err := task.Process(&kgo.Record{Value: rec}); err != nil {
			t.Fatal(err)
		}
		var o topology.Output
		if err := task.Prepare(&o); err != nil {
			t.Fatal(err)
		}
		commit(t, store, &o)
		var want []int64
		for id, in := range model {
			if in {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		var got []int64
		prefix := bucketRef{Users, b}.prefix(nil)
		err := store.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) error {
			ids, err := checkChunk(k, v)
			got = append(got, ids...)
			return err
		})
		if err != nil {
			t.Fatalf("interval %d: %v", interval, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("interval %d: %d members stored, want %d", interval, len(got), len(want))
		}
		read, err := ix.Members(store, Users, []lsh.Bucket{b}, 300)
		if err != nil || !slices.Equal(read[0], want[:min(300, len(want))]) {
			t.Fatalf("interval %d: Members read %d ids, want the first %d: %v", interval, len(read[0]), min(300, len(want)), err)
		}
	}
}

// TestLoadChunks reads the chunks of random id ranges of buckets of 0 to
// 12 chunks, stored between buckets of their own, and checks them against
// the chunks the test wrote: the last starting at or before the range
// (the first when none does), then those starting in it. Buckets with
// more than floorSteps chunks before the range take the backward seek.
func TestLoadChunks(t *testing.T) {
	store := memStore(t, "load")
	rng := rand.New(rand.NewPCG(7, 8))
	starts := map[lsh.Bucket][]int64{} // ascending
	var o topology.Output
	for h := range uint64(40) {
		b := lsh.Bucket{Table: 1, Hash: h}
		prefix := bucketRef{Users, b}.prefix(nil)
		start := int64(0)
		for range int(h % 13) {
			start += 1 + rng.Int64N(1000)
			starts[b] = append(starts[b], start)
			o.Put(state.AppendUint64(slices.Clone(prefix), uint64(start)), appendChunk(nil, start, []int64{start, start + 1}))
		}
	}
	commit(t, store, &o)
	r, err := store.NewSortedReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for h := range uint64(40) {
		b := lsh.Bucket{Table: 1, Hash: h}
		for range 20 {
			lo := rng.Int64N(14_000)
			if n := len(starts[b]); n > 0 && rng.IntN(2) == 0 {
				lo = starts[b][rng.IntN(n)] + rng.Int64N(3) - 1 // at a chunk's start, or next to it
			}
			hi := lo + rng.Int64N(3_000)
			var want []int64
			for i, s := range starts[b] {
				last := i+1 == len(starts[b]) || starts[b][i+1] > lo
				if s > lo && s <= hi || s <= lo && last || i == 0 && s > lo {
					want = append(want, s)
				}
			}
			chunks, err := loadChunks(r, bucketRef{Users, b}.prefix(nil), lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, c := range chunks {
				if c.stored != c.start || !slices.Equal(c.ids, []int64{c.start, c.start + 1}) {
					t.Fatalf("bucket %d: chunk %+v", h, c)
				}
				got = append(got, c.start)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("bucket %d (chunks %v), ids [%d, %d]: chunks %v, want %v", h, starts[b], lo, hi, got, want)
			}
		}
	}
}

// localSource reads the stage-2 stores of a test directly.
type localSource struct{ s *stage2 }

func (l localSource) Members(_ context.Context, k Kind, buckets []lsh.Bucket, limit int) ([][]int64, error) {
	stores := make([]*state.Store, len(buckets))
	for i, b := range buckets {
		stores[i] = l.s.stores[l.s.partition(BucketKey(nil, k, b))]
	}
	return l.s.ix.MembersStores(stores, k, buckets, limit)
}

func (l localSource) Score(_ context.Context, k Kind, q []byte, ids []int64, n int) ([]lsh.Scored, error) {
	stores := make([]*state.Store, len(ids))
	for i, id := range ids {
		stores[i] = l.s.stores[l.s.partition(ItemKey(nil, k, id))]
	}
	return l.s.ix.ScoreStores(stores, k, q, ids, n)
}

// TestUsers runs stage 1 and stage 2 of similar users over a random log in
// commit intervals of a second, publishing users 3 s after their
// signature changed, making new collectors from their stores now and then
// (as after a restart or an aborted transaction), and checks that stage 2
// holds exactly every user's signature, computed afresh from the artists
// they played, and exactly the bucket entries of those signatures: the
// entries of every signature a user had before are gone.
func TestUsers(t *testing.T) {
	ix, err := New(Config{MinHash: lsh.MinHashConfig{Bands: 16, Rows: 2}, Delay: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1_800_000_000, 0)
	s2 := newStage2(t, ix)
	var stores []*state.Store
	for i := range sources {
		stores = append(stores, memStore(t, fmt.Sprint("users", i)))
	}
	var cs []*Stage1
	restart := func() {
		cs = cs[:0]
		for _, s := range stores {
			c, err := ix.NewStage1(s, topic, partitions)
			if err != nil {
				t.Fatal(err)
			}
			c.now = func() time.Time { return clock }
			cs = append(cs, c)
		}
	}
	restart()
	// interval ends a commit interval of every stage-1 partition and
	// hands the records to stage 2.
	interval := func() {
		t.Helper()
		var out topology.Output
		for i, c := range cs {
			var o topology.Output
			if err := c.Prepare(&o, false); err != nil {
				t.Fatal(err)
			}
			commit(t, stores[i], &o)
			for _, r := range o.Records() {
				out.SendTo(r.Topic, r.Partition, r.Key, r.Value)
			}
		}
		s2.deliver(t, &out)
		clock = clock.Add(time.Second)
	}
	pending := func() (n int64) {
		for _, s := range stores {
			k, _, err := PendingUsers(s)
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
		return n
	}
	rng := rand.New(rand.NewPCG(1, 2))
	played := map[int64]map[int64]bool{}
	for i := range 200 {
		for range rng.IntN(40) {
			l := events.Listen{UserID: 1 + rng.Int64N(60), ArtistID: 1 + rng.Int64N(30)}
			if played[l.UserID] == nil {
				played[l.UserID] = map[int64]bool{}
			}
			played[l.UserID][l.ArtistID] = true
			if err := cs[l.UserID%sources].Add(&l); err != nil {
				t.Fatal(err)
			}
		}
		interval()
		if i%17 == 0 {
			restart()
		}
	}
	if pending() == 0 {
		t.Fatal("no user pending after the last listens")
	}
	for range 3 {
		interval()
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d users pending 3 s after the last listens", n)
	}
	want := map[int64][]byte{}
	for u, artists := range played {
		set := slices.Sorted(maps.Keys(artists))
		want[u], _ = ix.mh.Signature(set).AppendBinary(nil)
		want[u] = binary.AppendUvarint(want[u], uint64(len(set)))
		prev := int64(0)
		for _, a := range set {
			want[u] = binary.AppendUvarint(want[u], uint64(a-prev))
			prev = a
		}
	}
	s2.checkIndex(t, Users, want)

	// A user who plays exactly another's artists is the other's best
	// match, with a Jaccard of 1; one who shares 4 of 6 follows, scored
	// exactly 4/6 (however the signatures agree), then one sharing 3 of 5.
	plays := map[int64][]int64{
		1001: {101, 102, 103, 104},
		1002: {101, 102, 103, 104},
		1003: {101, 102, 103, 104, 105, 106},
		1004: {101, 102, 103, 107},
	}
	for _, u := range slices.Sorted(maps.Keys(plays)) {
		for _, artist := range plays[u] {
			l := events.Listen{UserID: u, ArtistID: artist}
			if err := cs[u%sources].Add(&l); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 4 {
		interval()
	}
	item, found, err := ix.Item(s2.stores[s2.partition(ItemKey(nil, Users, 1001))], Users, 1001)
	if err != nil || !found {
		t.Fatalf("user 1001's item: found %t, %v", found, err)
	}
	ans, err := ix.Similar(context.Background(), localSource{s2}, Users, 1001, item, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []lsh.Scored{{ID: 1002, Score: 1}, {ID: 1003, Score: 4.0 / 6}, {ID: 1004, Score: 3.0 / 5}}; !slices.Equal(ans, want) {
		t.Errorf("similar to user 1001: %+v, want %+v", ans, want)
	}
}

// featureJSON is the JSON of a song-features record.
func featureJSON(dst []byte, id int64, v []float32) []byte {
	dst = fmt.Appendf(dst, `{"song_id":%d,"vector":[`, id)
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendFloat(dst, float64(x), 'g', -1, 32)
	}
	return append(dst, "]}"...)
}

// feature is a song-features record.
func feature(id int64, v ...float32) *kgo.Record {
	return &kgo.Record{Key: strconv.AppendInt(nil, id, 10), Value: featureJSON(nil, id, v)}
}

// TestSongs sends vectors and their updates (new ones, repeats, the zero
// vector, bad records) through the features stage and stage 2 and checks
// that stage 2 holds exactly the latest vectors and their buckets, and
// that queries rank by the exact cosine.
func TestSongs(t *testing.T) {
	ix, err := New(Config{Hyperplanes: lsh.HyperplaneConfig{Dim: 4, Tables: 8, Bits: 3}})
	if err != nil {
		t.Fatal(err)
	}
	s2 := newStage2(t, ix)
	store := memStore(t, "features")
	task := ix.NewFeatureTask(store, topic, partitions)
	rng := rand.New(rand.NewPCG(3, 4))
	latest := map[int64][]float32{}
	for interval := range 50 {
		for range rng.IntN(30) {
			id := 1 + rng.Int64N(40)
			v := make([]float32, 4)
			switch rng.IntN(10) {
			case 0: // the zero vector: no buckets
			case 1: // the same vector again
				if old, ok := latest[id]; ok {
					copy(v, old)
				}
			default:
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
			}
			if err := task.Process(feature(id, v...)); err != nil {
				t.Fatal(err)
			}
			latest[id] = v
		}
		for _, bad := range []*kgo.Record{
			feature(99, 1, 2, 3),
			{Key: []byte("5"), Value: featureJSON(nil, 6, []float32{1, 2, 3, 4})},
			{Value: []byte(`{"song_id": 7}`)},
		} {
			if err := task.Process(bad); err == nil {
				t.Fatalf("interval %d: %s accepted", interval, bad.Value)
			}
		}
		var out topology.Output
		if err := task.Prepare(&out); err != nil {
			t.Fatal(err)
		}
		commit(t, store, &out)
		s2.deliver(t, &out)
		if interval%7 == 0 {
			task = ix.NewFeatureTask(store, topic, partitions)
		}
	}
	want := map[int64][]byte{}
	for id, v := range latest {
		want[id] = events.AppendVector(nil, v)
	}
	s2.checkIndex(t, Songs, want)

	// Song 1000 points the way of song 1001, exactly; 1002 nearly.
	for _, r := range []*kgo.Record{feature(1000, 1, 2, 3, 4), feature(1001, 2, 4, 6, 8), feature(1002, 1, 2, 3, 5)} {
		if err := task.Process(r); err != nil {
			t.Fatal(err)
		}
	}
	var out topology.Output
	if err := task.Prepare(&out); err != nil {
		t.Fatal(err)
	}
	commit(t, store, &out)
	s2.deliver(t, &out)
	item := events.AppendVector(nil, []float32{1, 2, 3, 4})
	ans, err := ix.Similar(context.Background(), localSource{s2}, Songs, 1000, item, 2)
	if err != nil {
		t.Fatal(err)
	}
	// cos((1,2,3,4), (1,2,3,5)) = 34 / √(30·39)
	want2 := []lsh.Scored{{ID: 1001, Score: 1}, {ID: 1002, Score: 34 / math.Sqrt(30*39)}}
	if len(ans) != 2 || ans[0].ID != 1001 || math.Abs(ans[0].Score-1) > 1e-12 ||
		ans[1].ID != 1002 || math.Abs(ans[1].Score-want2[1].Score) > 1e-12 {
		t.Errorf("similar to song 1000: %+v, want %+v", ans, want2)
	}
}

// TestMalformed: a malformed record is an error and changes nothing.
func TestMalformed(t *testing.T) {
	ix, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	good := []byte{Format, opJoin, byte(Users), 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9}
	for _, v := range [][]byte{
		{2, 0},
		append(slices.Clone(good), opItem, byte(Users), 0, 0, 0, 0, 0, 0, 0, 1, 200),
		append(slices.Clone(good), opJoin, 'x', 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9),
		append(slices.Clone(good), 9, byte(Users), 0, 0, 0, 0, 0, 0, 0, 1),
		good[:len(good)-1],
	} {
		task := ix.NewStage2(nil)
		if err := task.Process(&kgo.Record{Value: v}); err == nil {
			t.Errorf("%x accepted", v)
		}
		if n := len(task.items) + len(task.members); n != 0 {
			t.Errorf("%x: %d changes pending", v, n)
		}
	}
	task := ix.NewStage2(nil)
	if err := task.Process(&kgo.Record{Value: good}); err != nil || len(task.members) != 1 {
		t.Errorf("good record: %v, %d changes", err, len(task.members))
	}
}
