package parquet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/kappa-stream/kappa/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ptr(f float64) *float64 { return &f }

// hostileRows are rows at the edges of every field.
func hostileRows() []Row {
	return []Row{
		{UserID: 1, SongID: 1, ArtistID: 1, TS: 0, MsPlayed: 0, Partition: 0, Offset: 0},
		{UserID: math.MaxInt64, SongID: math.MaxInt64, ArtistID: math.MaxInt64, TS: 253_402_300_799_999, MsPlayed: 86_400_000,
			Stream: true, Country: "ZW", Lat: ptr(0), Lng: ptr(0), EventID: strings.Repeat("é", 64), Partition: 11, Offset: math.MaxInt64 - 1},
		{UserID: 7, SongID: 8, ArtistID: 9, TS: 1_767_225_599_999, MsPlayed: 29_999, Country: "US", Lat: ptr(-90), Lng: ptr(180),
			EventID: "\x00\"quote\"\n日本語 🎵", Partition: 3, Offset: 12},
		{UserID: 7, SongID: 8, ArtistID: 9, TS: 1_767_225_600_000, MsPlayed: 30_000, Stream: true, Lat: ptr(90), Lng: ptr(-180), Partition: 3, Offset: 13},
	}
}

// TestRoundTrip writes rows at the edges of every field and reads them
// back with parquet-go's reader; the file has data pages v1, zstd, and
// only plain, dictionary and level encodings.
func TestRoundTrip(t *testing.T) {
	rows := hostileRows()
	path := filepath.Join(t.TempDir(), "f.parquet")
	if _, err := writeTable(path, rows); err != nil {
		t.Fatal(err)
	}
	if err := validateListens(path, len(rows), 0, math.MaxInt64-1); err != nil {
		t.Fatal(err)
	}
	if err := validateListens(path, len(rows), 1, math.MaxInt64-1); !errors.Is(err, errInvalidFile) {
		t.Fatalf("validate with a wrong first offset: %v, want errInvalidFile", err)
	}
	if err := validateListens(path, len(rows)+1, 0, math.MaxInt64-1); !errors.Is(err, errInvalidFile) {
		t.Fatalf("validate with a wrong row count: %v, want errInvalidFile", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := pq.NewGenericReader[Row](f)
	got := make([]Row, len(rows)+1)
	n, err := r.Read(got)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if n != len(rows) {
		t.Fatalf("read %d rows, want %d", n, len(rows))
	}
	for i := range rows {
		if g, w := fmt.Sprint(deref(got[i])), fmt.Sprint(deref(rows[i])); g != w {
			t.Errorf("row %d:\n got  %s\n want %s", i, g, w)
		}
	}
	st, _ := f.Stat()
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			md := c.MetaData
			if md.Codec != format.Zstd {
				t.Errorf("column %v: codec %v, want ZSTD", md.PathInSchema, md.Codec)
			}
			for _, e := range md.Encoding {
				switch e {
				case format.Plain, format.RLEDictionary, format.PlainDictionary, format.RLE:
				default:
					t.Errorf("column %v: encoding %v; want only plain, dictionary and RLE levels", md.PathInSchema, e)
				}
			}
			for _, s := range md.EncodingStats {
				if s.PageType == format.DataPageV2 {
					t.Errorf("column %v: a data page v2", md.PathInSchema)
				}
			}
		}
	}
}

// deref makes a row printable with its pointers' values.
func deref(r Row) string {
	f := func(p *float64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%d %d %d %d %d %v %q %s %s %q %d %d", r.UserID, r.SongID, r.ArtistID, r.TS, r.MsPlayed, r.Stream,
		r.Country, f(r.Lat), f(r.Lng), r.EventID, r.Partition, r.Offset)
}

// TestRewrittenEpochIdentical stages the same records twice, as a re-run
// after a crash would, into two epochs: every file has the same name and
// the same bytes.
func TestRewrittenEpochIdentical(t *testing.T) {
	lines := testLines(rand.New(rand.NewPCG(1, 2)), 5000)
	stageAll := func(dir string) map[string][]byte {
		s, err := New(Config{Brokers: []string{"unused:9092"}, Dir: dir, InstanceID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		e := newEpoch()
		var dec events.Decoder
		for i, tl := range lines {
			var l events.Listen
			err := dec.Decode(tl.line, &l)
			e.add(int32(i%3), int64(100+i/3), &l, err == nil)
		}
		m, err := s.stage(e, newEpochID(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.publish(m); err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		root := filepath.Join(dir, listensDir)
		if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[rel] = b
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := stageAll(t.TempDir()), stageAll(t.TempDir())
	if len(a) < 6 {
		t.Fatalf("%d files; want several days of several partitions", len(a))
	}
	for name, ab := range a {
		if !bytes.Equal(ab, b[name]) {
			t.Errorf("%s: %d bytes then %d bytes that differ", name, len(ab), len(b[name]))
		}
	}
	if len(a) != len(b) {
		t.Errorf("%d files, then %d", len(a), len(b))
	}
}

// testLine is one produced record and whether it is a valid listen.
type testLine struct {
	line  []byte
	valid bool
}

// testLines are n records over four days: mostly valid listens, with
// every kind of invalid one (bad JSON, missing or out-of-range fields,
// one of lat/lng) mixed in.
func testLines(rng *rand.Rand, n int) []testLine {
	invalid := []string{
		`not json`, `{}`, `{"user_id":0,"song_id":1,"artist_id":1,"ts":0}`,
		`{"user_id":1,"song_id":1,"artist_id":1,"ts":"yesterday"}`,
		`{"user_id":1,"song_id":1,"artist_id":1,"ts":0,"lat":1}`,
		`{"user_id":1,"song_id":1,"artist_id":1,"ts":0,"country":"XX"}`,
		`[1,2,3]`, ``,
	}
	countries := []string{"", "us", "DE", "fr", "JP", "br"}
	base := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC).UnixMilli()
	out := make([]testLine, n)
	for i := range out {
		if rng.IntN(20) == 0 {
			out[i] = testLine{line: []byte(invalid[rng.IntN(len(invalid))])}
			continue
		}
		ts := base + rng.Int64N(4*86_400_000)
		var b strings.Builder
		fmt.Fprintf(&b, `{"user_id":%d,"song_id":%d,"artist_id":%d,"ts":%d,"ms_played":%d`,
			1+rng.IntN(500), 1+rng.IntN(2000), 1+rng.IntN(100), ts, rng.IntN(200_000))
		if c := countries[rng.IntN(len(countries))]; c != "" {
			fmt.Fprintf(&b, `,"country":%q`, c)
		}
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, `,"lat":%.4f,"lng":%.4f`, rng.Float64()*180-90, rng.Float64()*360-180)
		}
		if rng.IntN(4) == 0 {
			fmt.Fprintf(&b, `,"event_id":"e-%d"`, i)
		}
		b.WriteString("}")
		out[i] = testLine{line: []byte(b.String()), valid: true}
	}
	return out
}

// errCrash stops a Sink at a point of the epoch protocol, as kill -9
// would: nothing after the point runs.
var errCrash = errors.New("test: crash")

// TestExactlyOnceAcrossCrashes runs a sink over records already in the
// log and stops it dead at a point of its second epoch: after staging
// (the transaction open, its manifest record produced), after the commit
// before any rename, and after the first rename. A new sink with the same
// instance id and folder finishes the job. Every valid record is in
// exactly one file, in the folder of its day, and nothing is left staged.
func TestExactlyOnceAcrossCrashes(t *testing.T) {
	for _, point := range []string{"none", "staged", "committed", "renamed"} {
		t.Run(point, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, DefaultTopic),
				kfake.GroupMinSessionTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			brokers := c.ListenAddrs()
			lines := testLines(rand.New(rand.NewPCG(3, 4)), 3000)
			want := produceLines(t, brokers, lines)
			dir := t.TempDir()
			cfg := Config{Brokers: brokers, Dir: dir, InstanceID: "a", EpochRows: 400, EpochInterval: 300 * time.Millisecond,
				SessionTimeout: time.Second, TransactionTimeout: 5 * time.Second,
				Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
			if point != "none" {
				var (
					mu   sync.Mutex
					seen int
				)
				crashing := cfg
				crashing.hook = func(p string) error {
					mu.Lock()
					defer mu.Unlock()
					if p != point {
						return nil
					}
					if seen++; seen == 2 {
						return errCrash
					}
					return nil
				}
				s, err := New(crashing)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := s.Run(ctx); !errors.Is(err, errCrash) {
					t.Fatalf("run until the crash: %v", err)
				}
				if staged, _ := s.staged(); len(staged) != 1 {
					t.Fatalf("%d epochs staged after the crash, want 1", len(staged))
				}
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			waitCommitted(t, brokers, DefaultGroup, DefaultTopic, done)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if staged, err := s.staged(); err != nil || len(staged) != 0 {
				t.Fatalf("staged epochs left: %v %v", staged, err)
			}
			checkLake(t, dir, want)
		})
	}
}

// loc is where a record is in the log.
type loc struct {
	p   int32
	off int64
}

// produceLines produces the lines with random keys and returns the
// locations of the valid ones with their JSON.
func produceLines(t *testing.T, brokers []string, lines []testLine) map[loc][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "%d", i%97), Value: l.line}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want := map[loc][]byte{}
	for i, r := range recs {
		if lines[i].valid {
			want[loc{r.Partition, r.Offset}] = lines[i].line
		}
	}
	return want
}

// waitCommitted waits until the group has committed the end of every
// partition of topic, failing early when the sink's Run ends.
func waitCommitted(t *testing.T, brokers []string, group, topic string, done chan error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-done:
			t.Fatalf("sink stopped: %v", err)
		default:
		}
		lags, err := adm.Lag(context.Background(), group)
		if err == nil {
			if l, ok := lags[group]; ok && l.Error() == nil && l.Lag.Total() == 0 && len(l.Lag[topic]) > 0 {
				ok := true
				for _, ml := range l.Lag[topic] {
					ok = ok && ml.Commit.At >= 0 && ml.Commit.At == ml.End.Offset
				}
				if ok {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not caught up in a minute: %v %v", group, lags, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkLake reads every file of the listens table and checks that it
// holds each valid record once, in its day's folder, as produced.
func checkLake(t *testing.T, dir string, want map[loc][]byte) {
	t.Helper()
	got := map[loc]int{}
	files := 0
	root := filepath.Join(dir, listensDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		day := strings.TrimPrefix(filepath.Base(filepath.Dir(p)), "day=")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rows, err := pq.Read[Row](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, r := range rows {
			k := loc{r.Partition, r.Offset}
			got[k]++
			if g := time.UnixMilli(r.TS).UTC().Format(time.DateOnly); g != day {
				t.Errorf("%s: a row of day %s", p, g)
			}
			line, ok := want[k]
			if !ok {
				t.Errorf("%s: row at %v is no valid record", p, k)
				continue
			}
			same := bytes.Contains(line, fmt.Appendf(nil, `"user_id":%d,"song_id":%d,"artist_id":%d,"ts":%d,`, r.UserID, r.SongID, r.ArtistID, r.TS))
			if r.Lat != nil && r.Lng != nil {
				same = same && bytes.Contains(line, fmt.Appendf(nil, `,"lat":%.4f,"lng":%.4f`, *r.Lat, *r.Lng))
			} else {
				same = same && r.Lat == nil && r.Lng == nil && !bytes.Contains(line, []byte(`"lat"`))
			}
			if !same {
				t.Errorf("%s: row at %v %s is not its record %s", p, k, deref(r), line)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	missing, dup := 0, 0
	for k := range want {
		switch got[k] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(got) != len(want) {
		t.Fatalf("%d files: %d of %d valid records missing, %d in several files, %d rows in all", files, missing, len(want), dup, len(got))
	}
	t.Logf("%d files hold each of the %d valid records once", files, len(want))
}
