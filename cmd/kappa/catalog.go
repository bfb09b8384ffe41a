package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/catalog"
	"github.com/kappa-stream/kappa/topology"
)

// provisionCatalog creates the catalog's topics that are missing: the
// feed and the rejects kept forever, the table compacted, all with
// catalog.TopicPartitions (goka needs the feed and table alike).
func provisionCatalog(ctx context.Context, adm *kadm.Client, logger *slog.Logger) error {
	forever := map[string]string{"retention.ms": "-1"}
	return topology.Provision(ctx, adm, logger,
		topology.TopicSpec{Name: catalog.FeedTopic, Partitions: catalog.TopicPartitions, Configs: forever},
		topology.TopicSpec{Name: catalog.RejectsTopic, Partitions: catalog.TopicPartitions, Configs: forever},
		topology.TopicSpec{Name: catalog.TableTopic, Partitions: catalog.TopicPartitions, Configs: map[string]string{"cleanup.policy": "compact"}},
	)
}

// runCatalogProcessor runs the catalog's goka processor until ctx ends,
// with a new processor after each failure: goka is not on the listens'
// path, and its failures must not stop the instance.
func runCatalogProcessor(ctx context.Context, cfg catalog.Config, logger *slog.Logger) error {
	return keepRunning(ctx, logger, "catalog processor", func(ctx context.Context) error {
		p, err := catalog.NewProcessor(cfg)
		if err != nil {
			return err
		}
		err = p.Run(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
}

// keepRunning calls run until ctx ends, again after each failure (logged,
// with backoff); it returns nil.
func keepRunning(ctx context.Context, logger *slog.Logger, what string, run func(context.Context) error) error {
	backoff := time.Second
	for {
		err := run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		logger.Error(what+" failed; restarting it", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

const catalogUsage = `Usage: kappa catalog <rollback|reconcile> [flags]

The catalog of song and artist metadata, kept from the messy feed
` + catalog.FeedTopic + ` by every kappa instance (a goka processor group), with
every accepted change a version of its entity.

  rollback   restore the last good version of every entity a batch (or the
             time after --to) touched, by writing rollback records to the feed
  reconcile  compare the table with the feed's source log and report the
             missing, extra and differing entities (exit 1 on differences)
`

func runCatalog(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, catalogUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "rollback":
		return runCatalogRollback(ctx, args[1:], stdout, stderr)
	case "reconcile":
		return runCatalogReconcile(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "kappa catalog: unknown subcommand %q\n\n%s", args[0], catalogUsage)
	return errUsage
}

func runCatalogRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("catalog rollback", "Restores the last known good version of every entity that a feed batch touched\n"+
		"(--batch), or of every entity changed after a time (--to): writes one rollback\n"+
		"record per entity to "+catalog.FeedTopic+" (so a replay of the feed does the same)\n"+
		"and waits until the table shows them applied.", stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	batch := fs.String("batch", "", "the feed batch to roll back")
	to := fs.String("to", "", "roll back every version accepted after this time (RFC 3339)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the table to show the rollback")
	secFlags := securityFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sec, err := loadSecurity(fs, secFlags)
	if err != nil {
		return err
	}
	bs := splitBrokers(*brokers)
	switch {
	case len(bs) == 0:
		return usageErrorf(fs, "--brokers is empty")
	case (*batch == "") == (*to == ""):
		return usageErrorf(fs, "give --batch or --to")
	}
	var toTime time.Time
	if *to != "" {
		t, err := time.Parse(time.RFC3339, *to)
		if err != nil {
			return usageErrorf(fs, "--to %q: want RFC 3339", *to)
		}
		toTime = t
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	table, err := readTable(ctx, bs, sec.Opts())
	if err != nil {
		return err
	}
	id := "rollback-" + time.Now().UTC().Format("20060102T150405.000Z")
	var recs []catalog.Record
	for _, key := range slices.Sorted(maps.Keys(table)) {
		e := table[key]
		touched := slices.ContainsFunc(e.Versions, func(v catalog.Version) bool {
			return v.RolledBack == "" && ((*batch != "" && v.Batch == *batch) || (*to != "" && v.At.After(toTime)))
		})
		if !touched {
			continue
		}
		r := catalog.Record{Batch: id, Kind: catalog.KindRollback, Rollback: *batch, To: *to}
		if err := entityIDs(key, &r); err != nil {
			return err
		}
		recs = append(recs, r)
	}
	what := "batch " + *batch
	if *to != "" {
		what = "versions accepted after " + *to
	}
	if len(recs) == 0 {
		fmt.Fprintf(stdout, "nothing to roll back: no current version of any entity is from %s\n", what)
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bs...), kgo.DefaultProduceTopic(catalog.FeedTopic),
		kgo.RecordPartitioner(catalog.Partitioner())}, sec.Opts()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	kr := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		// NB: a Record always marshals.
		v, _ := json.Marshal(r)
		kr[i] = &kgo.Record{Key: []byte(r.Key()), Value: v}
	}
	if err := cl.ProduceSync(ctx, kr...).FirstErr(); err != nil {
		return fmt.Errorf("write the rollback records: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %d rollback records (batch %s) for %s; waiting for the table\n", len(recs), id, what)
	for {
		table, err := readTable(ctx, bs, sec.Opts())
		if err != nil {
			return err
		}
		done := 0
		for _, r := range recs {
			e := table[r.Key()]
			if e != nil && slices.ContainsFunc(e.Versions, func(v catalog.Version) bool { return v.RolledBack == id }) {
				done++
			}
		}
		if done == len(recs) {
			fmt.Fprintf(stdout, "rolled back %s: %d entities restored to their last good version\n", what, done)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d rollbacks applied: %w (is a kappa instance running?)", done, len(recs), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// entityIDs sets r's song_id or artist_id from a table key.
func entityIDs(key string, r *catalog.Record) error {
	var err error
	if id, ok := strings.CutPrefix(key, "song:"); ok {
		r.SongID, err = strconv.ParseInt(id, 10, 64)
	} else if id, ok := strings.CutPrefix(key, "artist:"); ok {
		r.ArtistID, err = strconv.ParseInt(id, 10, 64)
	} else {
		err = errors.New("not song:<id> or artist:<id>")
	}
	if err != nil {
		return fmt.Errorf("table key %q: %w", key, err)
	}
	return nil
}

// readTable reads the catalog table topic to its end: every entity by
// key. sec are the security options.
func readTable(ctx context.Context, brokers []string, sec []kgo.Opt) (map[string]*catalog.Entity, error) {
	table := map[string]*catalog.Entity{}
	err := topology.ReadTopic(ctx, brokers, catalog.TableTopic, func(r *kgo.Record) {
		if r.Value == nil {
			delete(table, string(r.Key))
			return
		}
		if e, err := catalog.DecodeEntity(r.Value); err == nil {
			table[string(r.Key)] = e
		}
	}, sec...)
	return table, err
}

func runCatalogReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("catalog reconcile", "Compares the catalog table with the feed's source log (--source, the feed's JSON\n"+
		"lines in the order they were sent): what the rules make of the source against what\n"+
		"the table holds. Reports the entities missing from the table, extra in it and\n"+
		"differing, with a sample of each; exit 1 when there is any difference. Entities\n"+
		"rolled back in the table differ from the source by design.", stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	source := fs.String("source", "", "the feed's source log, JSON lines (required; - is stdin)")
	sample := fs.Int("sample", 5, "how many entities of each kind of difference to show")
	secFlags := securityFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sec, err := loadSecurity(fs, secFlags)
	if err != nil {
		return err
	}
	bs := splitBrokers(*brokers)
	switch {
	case len(bs) == 0:
		return usageErrorf(fs, "--brokers is empty")
	case *source == "":
		return usageErrorf(fs, "--source is required")
	case *sample < 0:
		return usageErrorf(fs, "--sample must not be negative")
	}
	want, lines, err := expectedTable(*source)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	table, err := readTable(ctx, bs, sec.Opts())
	if err != nil {
		return err
	}
	got := map[string]catalog.Version{}
	for k, e := range table {
		if v, ok := e.Current(); ok {
			got[k] = v
		}
	}
	var missing, extra, differing []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch w := want[k]; {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s: %s", k, describe(w)))
		case g.Title != w.Title || g.ArtistID != w.ArtistID || g.Name != w.Name:
			differing = append(differing, fmt.Sprintf("%s: table %s (version %d, batch %s), source %s", k, describe(g), g.N, g.Batch, describe(w)))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			extra = append(extra, fmt.Sprintf("%s: %s (version %d, batch %s)", k, describe(got[k]), got[k].N, got[k].Batch))
		}
	}
	fmt.Fprintf(stdout, "source %s: %d records, %d entities; table: %d entities\n", *source, lines, len(want), len(got))
	for _, d := range []struct {
		what string
		list []string
	}{{"missing from the table", missing}, {"extra in the table", extra}, {"differing", differing}} {
		fmt.Fprintf(stdout, "%-22s %d\n", d.what, len(d.list))
		for _, s := range d.list[:min(len(d.list), *sample)] {
			fmt.Fprintf(stdout, "  %s\n", s)
		}
	}
	if n := len(missing) + len(extra) + len(differing); n > 0 {
		return fmt.Errorf("%d entities differ from the source", n)
	}
	fmt.Fprintln(stdout, "the table matches the source")
	return nil
}

// expectedTable applies the catalog rules to the source log in order and
// returns every entity's current version.
func expectedTable(path string) (map[string]catalog.Version, int, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		defer f.Close()
		r = f
	}
	entities := map[string]*catalog.Entity{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		rec, err := catalog.Decode(sc.Bytes())
		if err != nil {
			continue
		}
		out, o, _ := catalog.Apply(entities[rec.Key()], rec, time.Time{})
		if o == catalog.Accepted {
			entities[rec.Key()] = out
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	want := map[string]catalog.Version{}
	for k, e := range entities {
		if v, ok := e.Current(); ok {
			want[k] = v
		}
	}
	return want, lines, nil
}

func describe(v catalog.Version) string {
	if v.Name != "" {
		return strconv.Quote(v.Name)
	}
	return fmt.Sprintf("%q by artist %d", v.Title, v.ArtistID)
}
