package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/catalog"
	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/topology"
)

func runGenerate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("generate", "Generates seeded, realistic listen events: Zipf song popularity, artists owning\n"+
		"songs, users around real cities, optionally a live-drop burst (--scenario\n"+
		"live-drop) and malformed lines. Writes JSON lines to --out, or produces them\n"+
		"to Kafka when --out is not given. The same flags always give the same events.", stderr)
	var cfg generate.Config
	fs.Int64Var(&cfg.Seed, "seed", generate.DefaultSeed, "random seed")
	fs.IntVar(&cfg.Events, "events", generate.DefaultEvents, "number of events")
	fs.IntVar(&cfg.Users, "users", generate.DefaultUsers, "distinct users")
	fs.IntVar(&cfg.Artists, "artists", generate.DefaultArtists, "artists")
	fs.IntVar(&cfg.Songs, "songs", generate.DefaultSongs, "songs")
	start := fs.String("start", generate.DefaultStart.Format(time.RFC3339), "event time of the first event (RFC 3339)")
	fs.DurationVar(&cfg.Span, "span", generate.DefaultSpan, "event-time span of the events")
	fs.Float64Var(&cfg.MalformedRate, "malformed-rate", 0, "fraction of malformed lines, e.g. 0.005")
	scenario := fs.String("scenario", scenarioSteady, "steady, or live-drop: a new song started by --live-drop-listeners users within one minute, in the middle of the stream")
	fs.IntVar(&cfg.LiveDropListeners, "live-drop-listeners", generate.DefaultLiveDropListeners, "distinct listeners of the live drop")
	rate := fs.Float64("rate", 0, "events per second; 0 is as fast as possible")
	out := fs.String("out", "", "write JSON lines to this file (- is stdout) instead of producing to Kafka")
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers, when --out is not given")
	feed := fs.Bool("catalog", false, "generate the catalog feed of the songs and artists instead (to "+catalog.FeedTopic+"), with every kind of mess a third-party feed has")
	badBatch := fs.Bool("bad-batch", false, "with --catalog: end with a batch of valid but wrong records, to try kappa catalog rollback")
	features := fs.Bool("features", false, "generate the feature vectors of the songs instead (to "+topicFeatures+", keyed by song_id): latent clusters by artist")
	featureDim := fs.Int("feature-dim", 32, "with --features: the dimension of the vectors")
	secFlags := securityFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sec, err := loadSecurity(fs, secFlags)
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return usageErrorf(fs, "--start: %s", err)
	}
	cfg.Start = t
	if cfg.LiveDrop, err = parseScenario(*scenario); err != nil {
		return usageErrorf(fs, "%s", err)
	}
	if *rate < 0 {
		return usageErrorf(fs, "--rate must not be negative")
	}
	g, err := generate.New(cfg)
	if err != nil {
		return usageErrorf(fs, "%s", err)
	}
	if *features {
		if *featureDim < 1 || *featureDim > 4096 {
			return usageErrorf(fs, "--feature-dim %d: want 1…4096", *featureDim)
		}
		bs := splitBrokers(*brokers)
		if *out == "" && len(bs) == 0 {
			return usageErrorf(fs, "--brokers is empty")
		}
		return generateFeatures(ctx, g, *featureDim, *out, bs, sec.Opts(), stdout, stderr)
	}
	if *feed {
		bs := splitBrokers(*brokers)
		if *out == "" && len(bs) == 0 {
			return usageErrorf(fs, "--brokers is empty")
		}
		return generateFeed(ctx, g, *badBatch, *out, bs, sec.Opts(), stdout, stderr)
	}
	pace := newPacer(*rate)
	if *out != "" {
		return generateToFile(ctx, g, cfg.Events, pace, *out, stdout)
	}
	bs := splitBrokers(*brokers)
	if len(bs) == 0 {
		return usageErrorf(fs, "--brokers is empty")
	}
	cl, err := kgo.NewClient(producerOpts(bs, sec.Opts())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	p := newProducer(cl, stderr, "generate")
	var line, key []byte
	for i := 0; i < cfg.Events && ctx.Err() == nil; i++ {
		pace.wait(ctx, i)
		line, _ = g.Next(line[:0])
		key = g.Key(key[:0])
		p.produceKeyed(ctx, key, line)
	}
	return errors.Join(ctx.Err(), p.finish(context.WithoutCancel(ctx)))
}

func generateToFile(ctx context.Context, g *generate.Generator, n int, pace *pacer, path string, stdout io.Writer) error {
	err := writeOut(path, stdout, func(bw *bufio.Writer) error {
		var line []byte
		for i := 0; i < n && ctx.Err() == nil; i++ {
			pace.wait(ctx, i)
			line, _ = g.Next(line[:0])
			line = append(line, '\n')
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ctx.Err()
}

// writeOut calls write with a buffered writer to the file path (created,
// and synced at the end), or to stdout when path is "-".
func writeOut(path string, stdout io.Writer, write func(*bufio.Writer) error) error {
	w := stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && path != "-" {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	return nil
}

// generateFeed writes g's catalog feed to the file out, or produces it to
// the feed topic keyed by entity, partitioned as goka reads it.
func generateFeed(ctx context.Context, g *generate.Generator, bad bool, out string, brokers []string, sec []kgo.Opt, stdout, stderr io.Writer) error {
	f := g.CatalogFeed()
	lines, keys := f.Lines, f.Keys
	if bad {
		lines, keys = append(lines, f.Bad...), append(keys, f.BadKeys...)
		fmt.Fprintf(stderr, "the feed ends with bad batch %s (%d records); undo it with: kappa catalog rollback --batch %s\n", f.BadBatch, len(f.Bad), f.BadBatch)
	}
	if out != "" {
		return writeOut(out, stdout, func(bw *bufio.Writer) error {
			for _, l := range lines {
				bw.Write(l)
				bw.WriteByte('\n')
			}
			return nil
		})
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(catalog.FeedTopic),
		kgo.RecordPartitioner(catalog.Partitioner()), kgo.RecordDeliveryTimeout(2 * time.Minute)}, sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = provisionCatalog(pctx, kadm.NewClient(cl), nil)
	cancel()
	if err != nil {
		return err
	}
	p := newProducer(cl, stderr, "generate --catalog")
	for i, l := range lines {
		p.produceKeyed(ctx, []byte(keys[i]), l)
	}
	return errors.Join(ctx.Err(), p.finish(context.WithoutCancel(ctx)))
}

// featurePartitions is the partition count of song-features when kappa
// generate creates it (compacted: the latest vector per song wins).
const featurePartitions = 12

// generateFeatures writes the songs' feature vectors to the file out, or
// produces them to the song-features topic keyed by song id.
func generateFeatures(ctx context.Context, g *generate.Generator, dim int, out string, brokers []string, sec []kgo.Opt, stdout, stderr io.Writer) error {
	var line []byte
	if out != "" {
		return writeOut(out, stdout, func(bw *bufio.Writer) error {
			for id, v := range g.SongFeatures(dim) {
				line = append(generate.AppendFeature(line[:0], id, v), '\n')
				if _, err := bw.Write(line); err != nil {
					return err
				}
			}
			return nil
		})
	}
	cl, err := kgo.NewClient(append(producerOpts(brokers, sec), kgo.DefaultProduceTopic(topicFeatures))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = topology.Provision(pctx, kadm.NewClient(cl), nil, topology.TopicSpec{Name: topicFeatures, Partitions: featurePartitions,
		Configs: map[string]string{"cleanup.policy": "compact"}})
	cancel()
	if err != nil {
		return err
	}
	p := newProducer(cl, stderr, "generate --features")
	for id, v := range g.SongFeatures(dim) {
		if ctx.Err() != nil {
			break
		}
		line = generate.AppendFeature(line[:0], id, v)
		p.produceKeyed(ctx, strconv.AppendInt(nil, id, 10), line)
	}
	return errors.Join(ctx.Err(), p.finish(context.WithoutCancel(ctx)))
}

// Scenarios of the synthetic load.
const (
	scenarioSteady   = "steady"
	scenarioLiveDrop = "live-drop"
)

// parseScenario reports whether a scenario has a live drop.
func parseScenario(s string) (liveDrop bool, err error) {
	switch s {
	case scenarioSteady:
		return false, nil
	case scenarioLiveDrop:
		return true, nil
	}
	return false, fmt.Errorf("--scenario %q: want %s or %s", s, scenarioSteady, scenarioLiveDrop)
}

// pacer spaces events to a rate; a zero rate does not wait.
type pacer struct {
	rate  float64
	start time.Time
}

func newPacer(rate float64) *pacer { return &pacer{rate: rate, start: time.Now()} }

// wait blocks until event i is due.
func (p *pacer) wait(ctx context.Context, i int) {
	if p.rate == 0 {
		return
	}
	due := p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
	if d := time.Until(due); d > time.Millisecond {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
