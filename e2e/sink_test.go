package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Parquet sink's consumer group.
const sinkGroup = "kappa.sink"

// duckQuery runs sql with DuckDB (@duckdb/node-api, e2e/duckdb) and
// returns its rows.
func duckQuery(t testing.TB, sql string) []map[string]any {
	t.Helper()
	if _, err := os.Stat("duckdb/node_modules/@duckdb/node-api"); err != nil {
		t.Fatalf("@duckdb/node-api is not installed: run scripts/test-deps.sh (npm ci in e2e/duckdb): %v", err)
	}
	cmd := exec.Command("node", "duckdb/query.mjs", sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s\nquery: %s", err, stderr.Bytes(), sql)
	}
	var rows []map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("duckdb output: %v\n%s", err, out)
	}
	return rows
}

// num reads an integer DuckDB printed (64-bit ones as strings).
func num(t testing.TB, v any) int64 {
	t.Helper()
	n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	if err != nil {
		t.Fatalf("not an integer: %v", v)
	}
	return n
}

// listensGlob is the DuckDB table expression of the lake's listens.
func listensGlob(lake string) string {
	return "read_parquet('" + filepath.Join(lake, "listens") + "/**/*.parquet', hive_partitioning = true)"
}

// waitSinkCaughtUp waits until the sink group has committed all want
// records of listens and no epoch of the instances ids is left staged.
func waitSinkCaughtUp(t testing.TB, brokers, lake string, want int64, timeout time.Duration, running func(), ids ...string) {
	t.Helper()
	adm := newAdmin(t, brokers)
	waitFor(t, timeout, "the sink to commit every listen", func() (bool, string) {
		running()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		committed, end, lagging, err := groupProgress(ctx, adm, sinkGroup, "listens")
		if err != nil {
			return false, err.Error()
		}
		return end == want && committed == end, fmt.Sprintf("committed %d of %d (want %d); lagging:%s", committed, end, want, lagging)
	})
	waitFor(t, timeout, "the sink's last epochs to be published", func() (bool, string) {
		staged := 0
		for _, id := range ids {
			entries, err := os.ReadDir(filepath.Join(lake, "_sink", "staging", id))
			if err != nil && !os.IsNotExist(err) {
				return false, err.Error()
			}
			staged += len(entries)
		}
		return staged == 0, fmt.Sprintf("%d epochs staged", staged)
	})
}

// dayCountry is a (day, country) cell of the listens.
type dayCountry struct{ day, country string }

// expectedDayCountry counts the valid lines of d per UTC day and
// upper-cased country ("" when absent), from the raw JSON.
func expectedDayCountry(t testing.TB, d *dataset) map[dayCountry]counts {
	want := map[dayCountry]counts{}
	for l, ts := range d.valid(t) {
		k := dayCountry{day: ts.UTC().Format(time.DateOnly)}
		if l.Country != nil {
			k.country = strings.ToUpper(*l.Country)
		}
		c := want[k]
		c.Plays++
		if l.MsPlayed >= 30000 {
			c.Streams++
		}
		want[k] = c
	}
	return want
}

// checkLakeCounts asks DuckDB for the plays and streams per day and
// country of the lake and compares them with the raw events, and checks
// that no (partition, offset) is in it twice.
func checkLakeCounts(t testing.TB, lake string, d *dataset) {
	t.Helper()
	want := expectedDayCountry(t, d)
	rows := duckQuery(t, `SELECT CAST(day AS VARCHAR) AS day, coalesce(country, '') AS country,
		count(*) AS plays, count(*) FILTER (WHERE stream) AS streams
		FROM `+listensGlob(lake)+` GROUP BY ALL`)
	got := map[dayCountry]counts{}
	for _, r := range rows {
		got[dayCountry{fmt.Sprint(r["day"]), fmt.Sprint(r["country"])}] = counts{num(t, r["plays"]), num(t, r["streams"])}
	}
	var diffs []string
	for k, w := range want {
		if g := got[k]; g != w {
			diffs = append(diffs, fmt.Sprintf("%s %q: got %+v, want %+v", k.day, k.country, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s %q: got %+v, want nothing", k.day, k.country, g))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Fatalf("%d of %d (day, country) cells differ from the raw events:\n%s", len(diffs), len(want), strings.Join(diffs[:min(len(diffs), 20)], "\n"))
	}
	dup := duckQuery(t, `SELECT count(*) AS n, count(DISTINCT (kafka_partition, kafka_offset)) AS distinct_n FROM `+listensGlob(lake))
	n, distinct := num(t, dup[0]["n"]), num(t, dup[0]["distinct_n"])
	if n != distinct || n != int64(d.model.valid) {
		t.Fatalf("count(*) = %d, count(distinct (partition, offset)) = %d, valid listens %d", n, distinct, d.model.valid)
	}
	t.Logf("DuckDB: %d (day, country) cells and %d rows, each (partition, offset) once, as in the raw events", len(want), n)
}

// TestSinkDuckDB produces 100,000 generated events (malformed ones
// among them) into a cluster that a `kappa process --sink-dir` instance
// runs on, then reads the lake with DuckDB: the plays and streams per day
// and country equal the raw events', no (partition, offset) is twice in
// it, and the catalog tables join.
func TestSinkDuckDB(t *testing.T) {
	const n = 100_000
	d := generateDataset(t, testConfig(n))
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)
	lake := t.TempDir()
	in := newInstance(t, kafka, "a")
	in.args = append(in.args, "--sink-dir", lake, "--sink-epoch", "2s", "--live-windows", "off")
	in.start(t)
	waitReady(t, in.http)
	produceWithKappa(t, kafka, d.writeLines(t, "listens.jsonl", 0, n, false))
	out, err := exec.Command(kappaBin, "generate", "--catalog", "--seed", "42", "--songs", "4000", "--artists", "400", "--brokers", kafka).CombinedOutput()
	if err != nil {
		t.Fatalf("kappa generate --catalog: %v\n%s", err, out)
	}
	waitSinkCaughtUp(t, kafka, lake, n, 3*time.Minute, func() { in.mustRun(t) }, in.id)
	checkLakeCounts(t, lake, d)
	var st struct {
		Sink struct {
			Partitions []struct {
				Partition int32 `json:"partition"`
				Committed int64 `json:"committed"`
				End       int64 `json:"end"`
			} `json:"partitions"`
			Totals struct {
				Rows     int64 `json:"rows"`
				Rejected int64 `json:"rejected"`
			} `json:"totals"`
		} `json:"sink"`
	}
	if _, err := newClient(in.http).getJSON("/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, p := range st.Sink.Partitions {
		committed += p.Committed
		if p.Committed != p.End {
			t.Errorf("/v1/status: sink partition %d committed %d of %d", p.Partition, p.Committed, p.End)
		}
	}
	if tot := st.Sink.Totals; len(st.Sink.Partitions) != listensPartitions || committed != n ||
		tot.Rows != int64(d.model.valid) || tot.Rejected != int64(d.malformed) {
		t.Fatalf("/v1/status: sink %+v; want %d partitions committed to %d records, %d rows, %d rejected",
			st.Sink, listensPartitions, n, d.model.valid, d.malformed)
	}

	waitFor(t, time.Minute, "the catalog tables", func() (bool, string) {
		_, err1 := os.Stat(filepath.Join(lake, "catalog", "songs.parquet"))
		_, err2 := os.Stat(filepath.Join(lake, "catalog", "artists.parquet"))
		return err1 == nil && err2 == nil, fmt.Sprint(err1, err2)
	})
	dims := duckQuery(t, `SELECT (SELECT count(*) FROM '`+lake+`/catalog/songs.parquet') AS songs,
		(SELECT count(DISTINCT song_id) FROM '`+lake+`/catalog/songs.parquet') AS distinct_songs,
		(SELECT count(*) FROM '`+lake+`/catalog/artists.parquet') AS artists,
		(SELECT count(DISTINCT artist_id) FROM '`+lake+`/catalog/artists.parquet') AS distinct_artists`)
	if s, a := num(t, dims[0]["songs"]), num(t, dims[0]["artists"]); s == 0 || a == 0 ||
		s != num(t, dims[0]["distinct_songs"]) || a != num(t, dims[0]["distinct_artists"]) {
		t.Fatalf("catalog tables: %v; want songs and artists, each id once", dims[0])
	}
	top := duckQuery(t, `SELECT l.country, a.name, count(*) AS plays
		FROM `+listensGlob(lake)+` l JOIN '`+lake+`/catalog/artists.parquet' a USING (artist_id)
		WHERE l.country IS NOT NULL GROUP BY ALL ORDER BY plays DESC, l.country, a.name LIMIT 5`)
	if len(top) == 0 {
		t.Fatal("the listens join no artist of the catalog")
	}
	t.Logf("top artists by country: %v", top)
}

// instanceIDs are the instance ids of the instances.
func instanceIDs(instances []*instance) []string {
	out := make([]string, len(instances))
	for i, in := range instances {
		out[i] = in.id
	}
	return out
}

// waitStaging waits, polling every millisecond, until the staging folder
// holds an epoch, and with file, until an epoch holds that file.
func waitStaging(t testing.TB, dir, file string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if file == "" {
				return
			}
			if _, err := os.Stat(filepath.Join(dir, e.Name(), file)); err == nil {
				return
			}
		}
		<-tick.C
	}
	t.Fatalf("no epoch staged in %s within a minute", dir)
}

// sinkFaultEvents is the size of TestSinkKill9's run: 200,000 by
// default, KAPPA_E2E_SINK_EVENTS to change it (the run is
// 1,000,000).
func sinkFaultEvents(t testing.TB) int {
	if s := os.Getenv("KAPPA_E2E_SINK_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10_000 {
			t.Fatalf("KAPPA_E2E_SINK_EVENTS=%q: want an integer ≥ 10000", s)
		}
		return n
	}
	return 200_000
}

// TestSinkKill9 runs two `kappa process --sink-dir` instances on one
// lake with short epochs while the events are produced at a steady
// pace, and kills one of them with SIGKILL nine times (in random order),
// each time once the sink has committed a random share of the log and
// then either after a random delay of up to one epoch, or as soon as an
// epoch's files are being staged, or as soon as its manifest.json is
// written (during its commit or its renames). Each victim is restarted at
// once with the same identity. At the end every valid listen of the log
// is in the lake exactly once: the (partition, offset) pairs DuckDB reads
// are those of the valid records in listens.
func TestSinkKill9(t *testing.T) {
	const kills = 9
	n := sinkFaultEvents(t)
	d := generateDataset(t, testConfig(n))
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)
	lake := t.TempDir()
	instances := []*instance{newInstance(t, kafka, "a"), newInstance(t, kafka, "b")}
	for _, in := range instances {
		in.args = append(in.args, "--sink-dir", lake, "--sink-epoch", "300ms", "--sink-epoch-rows", "20000", "--live-windows", "off")
		in.start(t)
	}
	for _, in := range instances {
		waitReady(t, in.http)
	}
	running := func() {
		for _, in := range instances {
			in.mustRun(t)
		}
	}

	rng := rand.New(rand.NewPCG(21, 21))
	moments := make([]int64, kills)
	for i := range moments {
		moments[i] = int64(n/20) + rng.Int64N(int64(n*17/20))
	}
	slices.Sort(moments)
	f := startFeeder(t, kafka, d, n, 500, 20*time.Millisecond)
	adm := newAdmin(t, kafka)
	var logs []string
	for i, at := range moments {
		in := instances[rng.IntN(len(instances))]
		waitFor(t, 3*time.Minute, fmt.Sprintf("the sink to commit %d listens", at), func() (bool, string) {
			running()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			committed, _, _, err := groupProgress(ctx, adm, sinkGroup, "listens")
			if err != nil {
				return false, err.Error()
			}
			return committed >= at, fmt.Sprintf("committed %d", committed)
		})
		staging := filepath.Join(lake, "_sink", "staging", in.id)
		switch i % 3 {
		case 0:
			// NB: not a wait for a condition: a random delay of up to
			// one epoch puts the kill anywhere in the epoch protocol.
			<-time.After(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		case 1:
			// While an epoch's files are written.
			waitStaging(t, staging, "")
		case 2:
			// Once an epoch is staged: while it commits or renames.
			waitStaging(t, staging, "manifest.json")
		}
		in.p.stop(t, syscall.SIGKILL)
		logs = append(logs, in.p.log)
		t.Logf("kill %d: SIGKILL %s with %d events produced, the sink past %d", i+1, in.id, f.produced.Load(), at)
		in.start(t)
	}
	f.waitProduced(t, int64(n))
	waitSinkCaughtUp(t, kafka, lake, int64(n), 5*time.Minute, running, instanceIDs(instances)...)
	for _, in := range instances {
		logs = append(logs, in.p.log)
	}

	// The expected (partition, offset) pairs: the valid records of the
	// log, told by their bytes.
	valid := map[string]bool{}
	for i, line := range d.lines {
		valid[string(line)] = !d.bad[i]
	}
	want := map[[2]int64]bool{}
	for _, r := range readCommitted(t, kafka, "listens") {
		if valid[string(r.Value)] {
			want[[2]int64{int64(r.Partition), r.Offset}] = true
		}
	}
	if len(want) != d.model.valid {
		t.Fatalf("the log holds %d valid records, the dataset %d", len(want), d.model.valid)
	}
	rows := duckQuery(t, `SELECT kafka_partition AS p, kafka_offset AS o, count(*) AS c FROM `+listensGlob(lake)+` GROUP BY ALL`)
	var dup, extra int
	for _, r := range rows {
		k := [2]int64{num(t, r["p"]), num(t, r["o"])}
		if num(t, r["c"]) != 1 {
			dup++
		}
		if !want[k] {
			extra++
		}
		delete(want, k)
	}
	if dup > 0 || extra > 0 || len(want) > 0 {
		t.Fatalf("lake: %d (partition, offset) pairs more than once, %d not valid records, %d valid records missing", dup, extra, len(want))
	}
	finished, deleted := 0, 0
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		finished += bytes.Count(b, []byte("finishing a committed staged epoch"))
		deleted += bytes.Count(b, []byte("deleting an uncommitted staged epoch"))
	}
	t.Logf("%d valid listens once each after %d kills; on restart, %d committed staged epochs finished, %d uncommitted ones deleted",
		len(rows), kills, finished, deleted)
	checkLakeCounts(t, lake, d)
}
