package rollups

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

func TestCellKeyOrderMatchesEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := []int64{1, 2, 255, 256, 257, 1 << 40, math.MaxInt64}
	var keys []cellKey
	for range 2000 {
		c := events.Country{}
		if r.IntN(4) > 0 {
			c = events.Country{byte('A' + r.IntN(26)), byte('A' + r.IntN(26))}
		}
		table := tableSong
		if r.IntN(2) == 0 {
			table = tableArtist
		}
		keys = append(keys, newCellKey(table, ids[r.IntN(len(ids))], int32(r.IntN(3_000_000)), c))
	}
	byCompare := slices.Clone(keys)
	slices.SortFunc(byCompare, func(a, b cellKey) int { return a.compare(b) })
	byBytes := slices.Clone(keys)
	slices.SortFunc(byBytes, func(a, b cellKey) int { return bytes.Compare(a.append(nil), b.append(nil)) })
	if !slices.Equal(byCompare, byBytes) {
		t.Fatal("compare and bytewise order of encodings differ")
	}
	k := newCellKey(tableSong, 0x0102030405060708, 0x0a0b0c0d, events.Country{'G', 'B'})
	want := []byte{tableSong, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 'G', 'B'}
	if got := k.append(nil); !bytes.Equal(got, want) {
		t.Fatalf("encoding %x, want %x", got, want)
	}
}

func day(s string) int32 {
	var l events.Listen
	var d events.Decoder
	if err := d.Decode([]byte(`{"user_id":1,"song_id":1,"artist_id":1,"ts":"`+s+`T00:00:00Z"}`), &l); err != nil {
		panic(err)
	}
	return l.Day()
}

func TestTaskAndReader(t *testing.T) {
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lines := []string{
		`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z","ms_played":31000,"country":"gb"}`,
		`{"user_id":2,"song_id":7,"artist_id":3,"ts":"2026-03-01T23:59:59.999-01:00","ms_played":1000,"country":"GB"}`,
		`{"user_id":3,"song_id":7,"artist_id":3,"ts":1772409600000,"ms_played":30000}`,
		`{"user_id":4,"song_id":8,"artist_id":3,"ts":"2026-03-03T00:00:00Z","country":"FR"}`,
		`{"user_id":5,"song_id":7,"artist_id":3,"ts":"2026-03-05T00:00:00Z","country":"FR","ms_played":40000}`,
		`{"user_id":0,"song_id":7,"artist_id":3,"ts":"2026-03-05T00:00:00Z"}`,
	}
	// Two transactions, so that totals of the same key add up.
	agg := NewStage2(s, state.NewRecent(1<<20))
	for _, part := range [][]string{lines[:2], lines[2:]} {
		applyListens(t, s, agg, part)
	}
	r := NewReader(s)
	gb, fr := events.Country{'G', 'B'}, events.Country{'F', 'R'}
	for _, tc := range []struct {
		name string
		q    Query
		want Result
	}{
		{"song by day", Query{Entity: Song, ID: 7, From: day("2026-03-01"), To: day("2026-03-05")},
			Result{5 - 1, 3, []Row{{Day: day("2026-03-01"), Plays: 1, Streams: 1}, {Day: day("2026-03-02"), Plays: 2, Streams: 1}, {Day: day("2026-03-05"), Plays: 1, Streams: 1}}}},
		{"song by country", Query{Entity: Song, ID: 7, From: day("2026-03-01"), To: day("2026-03-05"), By: ByCountry},
			Result{4, 3, []Row{{Plays: 1, Streams: 1}, {Country: fr, Plays: 1, Streams: 1}, {Country: gb, Plays: 2, Streams: 1}}}},
		{"song one country", Query{Entity: Song, ID: 7, From: day("2026-03-01"), To: day("2026-03-05"), Country: gb},
			Result{2, 1, []Row{{Day: day("2026-03-01"), Plays: 1, Streams: 1}, {Day: day("2026-03-02"), Plays: 1}}}},
		{"range cuts days", Query{Entity: Song, ID: 7, From: day("2026-03-02"), To: day("2026-03-04")},
			Result{2, 1, []Row{{Day: day("2026-03-02"), Plays: 2, Streams: 1}}}},
		{"artist sums songs", Query{Entity: Artist, ID: 3, From: day("2026-03-01"), To: day("2026-03-31"), By: ByCountry},
			Result{5, 3, []Row{{Plays: 1, Streams: 1}, {Country: fr, Plays: 2, Streams: 1}, {Country: gb, Plays: 2, Streams: 1}}}},
		{"unknown id", Query{Entity: Song, ID: 99, From: day("2026-03-01"), To: day("2026-03-31")}, Result{}},
		{"song is not artist", Query{Entity: Artist, ID: 7, From: day("2026-03-01"), To: day("2026-03-31")}, Result{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Query(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Plays != tc.want.Plays || got.Streams != tc.want.Streams || !slices.Equal(got.Rows, tc.want.Rows) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// addLine decodes a JSON listen and adds it to stage 1, as kappa's stage
// 1 does; an invalid line is its decoding error.
func addLine(users *Stage1, line string) error {
	var d events.Decoder
	var l events.Listen
	if err := d.Decode([]byte(line), &l); err != nil {
		return err
	}
	return users.Add(&l)
}

// applyListens runs lines through stage 1 and its deltas through agg,
// stage 2 over s, and writes agg's changes to s, as one committed
// transaction would.
func applyListens(t testing.TB, s *state.Store, agg *Stage2, lines []string) {
	t.Helper()
	users := NewStage1("deltas", 4)
	for _, l := range lines {
		_ = addLine(users, l) // NB: invalid lines count nowhere
	}
	var deltas topology.Output
	if err := users.Prepare(&deltas, false); err != nil {
		t.Fatal(err)
	}
	for _, rec := range deltas.Records() {
		if rec.Topic != "deltas" {
			t.Fatalf("delta sent to %q", rec.Topic)
		}
		if err := agg.Process(rec); err != nil {
			t.Fatal(err)
		}
	}
	var changes topology.Output
	if err := agg.Prepare(&changes); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for k, v := range changes.Changes() {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
}

// TestRecentRows runs the same random listens, in the same transactions,
// through a stage 2 that keeps a small Recent (so that rows come both
// from it and from the store, and the task is now and then made anew, as
// after an abort) and through one without: both stores end up equal.
func TestRecentRows(t *testing.T) {
	open := func() *state.Store {
		s, err := state.Open("db", state.WithFS(vfs.NewMem()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	cached, plain := open(), open()
	newCached := func() *Stage2 { return NewStage2(cached, state.NewRecent(2<<10)) }
	aggCached, aggPlain := newCached(), NewStage2(plain, nil)
	r := rand.New(rand.NewPCG(5, 6))
	for tx := range 60 {
		var lines []string
		for range 40 {
			lines = append(lines, fmt.Sprintf(`{"user_id":%d,"song_id":%d,"artist_id":%d,"ts":%d,"ms_played":%d,"country":"%c%c"}`,
				1+r.IntN(50), 1+r.IntN(30), 1+r.IntN(5), 1772323200000+r.Int64N(3*86_400_000), r.IntN(60_000),
				'A'+r.IntN(4), 'X'))
		}
		applyListens(t, cached, aggCached, lines)
		applyListens(t, plain, aggPlain, lines)
		if tx%9 == 4 {
			aggCached = newCached()
		}
	}
	dump := func(s *state.Store) (kv []string) {
		if err := s.Scan(nil, nil, func(k, v []byte) error {
			kv = append(kv, fmt.Sprintf("%x=%x", k, v))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return kv
	}
	got, want := dump(cached), dump(plain)
	if len(want) < 100 || !slices.Equal(got, want) {
		t.Fatalf("with a Recent the store holds %d entries, without %d; equal: %v", len(got), len(want), slices.Equal(got, want))
	}
}

func TestDeltaRecordsGroupByEntity(t *testing.T) {
	users := NewStage1("deltas", 4)
	for _, l := range []string{
		`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z","ms_played":31000,"country":"gb"}`,
		`{"user_id":2,"song_id":7,"artist_id":3,"ts":"2026-03-01T11:00:00Z","country":"GB"}`,
		`{"user_id":3,"song_id":7,"artist_id":3,"ts":"2026-03-02T10:00:00Z"}`,
		`{"user_id":4,"song_id":8,"artist_id":3,"ts":"2026-03-02T10:00:00Z"}`,
	} {
		if err := addLine(users, l); err != nil {
			t.Fatal(err)
		}
	}
	var out topology.Output
	if err := users.Prepare(&out, false); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	route := kgo.StickyKeyPartitioner(nil).ForTopic("deltas")
	seen := map[int32]bool{}
	for _, rec := range out.Records() {
		if rec.Topic != "deltas" || seen[rec.Partition] {
			t.Fatalf("record for %s/%d: want one record per partition of deltas", rec.Topic, rec.Partition)
		}
		seen[rec.Partition] = true
		deltas, err := parseDeltas(nil, rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deltas {
			e, c := d.k.entity(), events.Country{byte(d.k.lo >> 16), byte(d.k.lo >> 8)}
			id := fmt.Sprintf("%x/%d", e.table, e.id)
			if got[id] != "" {
				got[id] += " "
			}
			got[id] += fmt.Sprintf("%d/%s:%d,%d", d.k.day(), c, d.n.plays, d.n.streams)
			entity := map[byte]Entity{tableSong: Song, tableArtist: Artist}[e.table]
			if p := route.Partition(&kgo.Record{Key: PartitionKey(nil, entity, e.id)}, 4); int32(p) != rec.Partition {
				t.Errorf("%s sent to partition %d, murmur2 of its key says %d", id, rec.Partition, p)
			}
		}
	}
	d1, d2 := day("2026-03-01"), day("2026-03-02")
	want := map[string]string{
		"10/7": fmt.Sprintf("%d/GB:2,1 %d/:1,0", d1, d2),
		"10/8": fmt.Sprintf("%d/:1,0", d2),
		"12/3": fmt.Sprintf("%d/GB:2,1 %d/:2,0", d1, d2),
	}
	if !maps.Equal(got, want) {
		t.Fatalf("deltas %v, want %v", got, want)
	}
	good := appendDeltas([]byte{deltaFormat}, entity{tableSong, 7}, []cell{{k: newCellKey(tableSong, 7, 3, events.Country{'G', 'B'}), c: counts{2, 1}}})
	for _, bad := range [][]byte{nil, {9}, {deltaFormat, 1}, good[:len(good)-1], append(good[:len(good):len(good)], 0x10),
		append([]byte{deltaFormat, 0x11}, good[2:]...)} {
		prior := []delta{{n: counts{1, 0}}}
		if got, err := parseDeltas(prior, bad); err == nil || len(got) != len(prior) {
			t.Errorf("delta %x accepted (%d cells, error %v)", bad, len(got)-len(prior), err)
		}
	}
}

func BenchmarkAggregate(b *testing.B) {
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(3, 4))
	zipf := rand.NewZipf(r, 1.1, 1, 199_999)
	const perFlush = 5000
	listens := make([]events.Listen, 100_000)
	for i := range listens {
		listens[i] = events.Listen{UserID: 1, SongID: int64(zipf.Uint64()) + 1, ArtistID: int64(r.IntN(5000)) + 1,
			TS: 1772323200000 + int64(r.IntN(7*86_400_000)), MsPlayed: int32(r.IntN(300_000)),
			Country: events.Country{byte('A' + r.IntN(20)), 'X'}}
	}
	users := NewStage1("deltas", 4)
	agg := NewStage2(s, state.NewRecent(16<<20))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = users.Add(&listens[i%len(listens)])
		if (i+1)%perFlush == 0 || i == b.N-1 {
			var deltas, changes topology.Output
			if err := users.Prepare(&deltas, false); err != nil {
				b.Fatal(err)
			}
			for _, rec := range deltas.Records() {
				if err := agg.Process(rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := agg.Prepare(&changes); err != nil {
				b.Fatal(err)
			}
			batch := s.NewBatch()
			for k, v := range changes.Changes() {
				if err := batch.Set(k, v); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Commit(false); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestMergeRow(t *testing.T) {
	gb, fr, none := events.Country{'G', 'B'}, events.Country{'F', 'R'}, events.Country{}
	cellOf := func(c events.Country, plays, streams int64) cell {
		return cell{k: newCellKey(tableSong, 7, 3, c), c: counts{plays, streams}}
	}
	entries := func(row []byte) []rowEntry {
		var out []rowEntry
		if err := forRow(row, func(e rowEntry) { out = append(out, e) }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var scratch []rowEntry
	row, err := mergeRow(nil, nil, []cell{cellOf(fr, 2, 1), cellOf(gb, 1, 0)}, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	row, err = mergeRow(nil, row, []cell{cellOf(none, 5, 5), cellOf(gb, 3, 3)}, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	want := []rowEntry{{none, counts{5, 5}}, {fr, counts{2, 1}}, {gb, counts{4, 3}}}
	if got := entries(row); !slices.Equal(got, want) {
		t.Fatalf("row %v, want %v", got, want)
	}
	for _, bad := range [][]byte{{'G'}, {'G', 'B'}, {'G', 'B', 1}, {'G', 'B', 0x80}} {
		if _, err := mergeRow(nil, bad, nil, &scratch); err == nil {
			t.Errorf("row %x accepted", bad)
		}
	}
}

// BenchmarkCellKey packs listens' cell keys, sorts them as a flush does,
// and encodes them to their store keys.
func BenchmarkCellKey(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	const perFlush = 4096
	ids := make([]int64, perFlush)
	for i := range ids {
		ids[i] = 1 + r.Int64N(200_000)
	}
	keys := make([]cellKey, perFlush)
	var dst []byte
	b.ResetTimer()
	for i := 0; i < b.N; i += perFlush {
		for j := range keys {
			keys[j] = newCellKey(tableSong, ids[j], int32(20_500+j%7), events.Country{'G', 'B'})
		}
		slices.SortFunc(keys, cellKey.compare)
		for _, k := range keys {
			dst = k.append(dst[:0])
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}

// TestLargeInterval: an interval whose deltas are several MiB (200,000
// songs, each its own entity) goes out in records below the producer's
// 1 MiB limit, and stage 2 counts every play from them.
func TestLargeInterval(t *testing.T) {
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const songs = 200_000
	users := NewStage1("deltas", 1)
	for i := range songs {
		l := events.Listen{UserID: 1, SongID: int64(i + 1), ArtistID: int64(i%7 + 1), TS: 1772323200000, MsPlayed: 31_000}
		if err := users.Add(&l); err != nil {
			t.Fatal(err)
		}
	}
	var deltas topology.Output
	if err := users.Prepare(&deltas, false); err != nil {
		t.Fatal(err)
	}
	total := 0
	agg := NewStage2(s, nil)
	for _, rec := range deltas.Records() {
		if len(rec.Value) >= 1<<20 {
			t.Fatalf("a record of %d bytes, over the producer's limit", len(rec.Value))
		}
		total += len(rec.Value)
		if err := agg.Process(rec); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(deltas.Records()); total < 2<<20 || n < 4 {
		t.Fatalf("%d records of %d bytes in all: want an interval of several MiB in several records", n, total)
	}
	var changes topology.Output
	if err := agg.Prepare(&changes); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for k, v := range changes.Changes() {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	r := NewReader(s)
	for _, id := range []int64{1, songs / 2, songs} {
		got, err := r.Query(Query{Entity: Song, ID: id, From: day("2026-03-01"), To: day("2026-03-01")})
		if err != nil || got.Plays != 1 || got.Streams != 1 {
			t.Fatalf("song %d: %+v (%v), want one play and one stream", id, got, err)
		}
	}
	for a := int64(1); a <= 7; a++ {
		got, err := r.Query(Query{Entity: Artist, ID: a, From: day("2026-03-01"), To: day("2026-03-01")})
		want := int64(songs / 7)
		if a <= songs%7 {
			want++
		}
		if err != nil || got.Plays != want {
			t.Fatalf("artist %d: %d plays (%v), want %d", a, got.Plays, err, want)
		}
	}
}
