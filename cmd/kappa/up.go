package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/broker"
	"github.com/kappa-stream/kappa/catalog"
	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/similar"
)

// upConfig is the operator configuration of `kappa up`.
type upConfig struct {
	instanceConfig
	kafkaAddr    string
	generateRate float64
	seed         int64
	liveDrop     bool
	syncWrites   bool
	logLevel     string
}

func runUp(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := newFlagSet("up", "All-in-one: starts the embedded Kafka-protocol broker (unless --brokers is given),\n"+
		"provisions the topics, runs every processor and serves the HTTP API. Ctrl-C\n"+
		"stops cleanly; a restart resumes where it stopped.", stderr)
	var c upConfig
	var brokers, rate string
	instanceFlags(fs, &c.instanceConfig, "kappa-up-"+hostname())
	fs.StringVar(&c.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "listen address of the embedded broker")
	fs.StringVar(&brokers, "brokers", "", "comma-separated seed brokers of an external cluster (no embedded broker)")
	fs.StringVar(&rate, "generate", "", "synthetic load, events per second, e.g. 5000/s")
	fs.Int64Var(&c.seed, "seed", generate.DefaultSeed, "seed of the synthetic load")
	scenario := fs.String("scenario", scenarioSteady, "synthetic load: steady, or live-drop (a new song started by 50,000 users within one minute, about two minutes in)")
	fs.BoolVar(&c.syncWrites, "sync-writes", false, "fsync every batch the embedded broker receives (survives machine crashes, slower)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c.brokers = splitBrokers(brokers)
	var err error
	if len(c.brokers) == 0 && (c.secFlags.TLS || c.secFlags.CAFile != "" || c.secFlags.CertFile != "" || c.secFlags.Mechanism != "") {
		return usageErrorf(fs, "the --tls and --sasl flags are for an external cluster (--brokers); the embedded broker is plaintext")
	}
	if c.liveDrop, err = parseScenario(*scenario); err != nil {
		return usageErrorf(fs, "%s", err)
	}
	c.auth.standalone = true
	if err := checkInstance(fs, &c.instanceConfig); err != nil {
		return err
	}
	if rate != "" {
		r, err := strconv.ParseFloat(strings.TrimSuffix(rate, "/s"), 64)
		if err != nil || r <= 0 {
			return usageErrorf(fs, "--generate %q: want events per second, e.g. 5000/s", rate)
		}
		c.generateRate = r
	}
	logger, err := newLogger(stderr, c.logLevel)
	if err != nil {
		return usageErrorf(fs, "--log-level: %s", err)
	}
	return up(ctx, c, logger)
}

func up(ctx context.Context, c upConfig, logger *slog.Logger) error {
	tel, err := newTelemetry()
	if err != nil {
		return err
	}
	defer tel.provider.Shutdown(context.WithoutCancel(ctx))

	if len(c.brokers) == 0 {
		b, err := broker.Start(broker.Config{
			Dir:        filepath.Join(c.data, "broker"),
			Addr:       c.kafkaAddr,
			SyncWrites: c.syncWrites,
			Logger:     logger,
		})
		if err != nil {
			return err
		}
		defer b.Close()
		c.brokers = []string{b.Addr()}
		logger.Info("embedded broker listening", "addr", b.Addr(), "data", filepath.Join(c.data, "broker"))
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runInstance(gctx, c.instanceConfig, tel, logger) })
	if c.generateRate > 0 {
		g.Go(func() error { return generateLive(gctx, c, logger) })
	}
	err = g.Wait()
	logger.Info("stopped", "err", err)
	return err
}

// generateLive produces synthetic listens at c.generateRate with event
// times that follow the wall clock, until ctx ends.
func generateLive(ctx context.Context, c upConfig, logger *slog.Logger) error {
	// NB: the live drop is in the middle of the span.
	span := time.Hour
	if c.liveDrop {
		span = 4 * time.Minute
	}
	gen, err := generate.New(generate.Config{
		Seed:          c.seed,
		Start:         time.Now().UTC(),
		Span:          span,
		Events:        max(int(c.generateRate*span.Seconds()), 1),
		MalformedRate: 0.005,
		LiveDrop:      c.liveDrop,
	})
	if err != nil {
		return err
	}
	if d, ok := gen.Drop(); ok {
		logger.Info("live drop: song "+strconv.FormatInt(d.SongID, 10)+" starts at "+d.Window.Format(time.TimeOnly)+" UTC; watch: curl 'http://"+
			c.httpAddr+"/v1/songs/"+strconv.FormatInt(d.SongID, 10)+"/live?last=5'", "listeners", d.Listeners, "artist", d.ArtistID)
	}
	cl, err := kgo.NewClient(producerOpts(c.brokers, c.sec.Opts())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := produceCatalog(ctx, gen, c.brokers, c.sec.Opts(), logger); err != nil {
		return err
	}
	if o, ok := c.procs.Lookup(similar.Spec.Name); ok && o.Enabled() {
		dim := o.(*similar.Options).FeatureDim
		if err := generateFeatures(ctx, gen, dim, "", c.brokers, c.sec.Opts(), io.Discard, io.Discard); err != nil {
			return fmt.Errorf("produce the synthetic song features: %w", err)
		}
		logger.Info("produced the synthetic song features", "topic", topicFeatures, "songs", gen.Config().Songs, "dim", dim)
	}
	logger.Info("generating synthetic load", "rate", c.generateRate, "seed", c.seed)
	pace := newPacer(c.generateRate)
	var (
		line, key []byte
		dec       events.Decoder
		l         events.Listen
		hinted    bool
	)
	for i := 0; ctx.Err() == nil; i++ {
		pace.wait(ctx, i)
		line, _ = gen.Next(line[:0])
		if !hinted && dec.Decode(line, &l) == nil {
			hinted = true
			today := time.Now().UTC().Format("2006-01-02")
			song := "http://" + c.httpAddr + "/v1/songs/" + strconv.FormatInt(l.SongID, 10)
			logger.Info("try: curl '" + song + "/plays?from=" + today + "&to=" + today + "&by=country'")
			if enabled(c.procs, "live") {
				logger.Info("try: curl '" + song + "/live?last=5'")
			}
			if enabled(c.procs, "fans") {
				logger.Info("try: curl 'http://" + c.httpAddr + "/v1/artists/" + strconv.FormatInt(l.ArtistID, 10) + "/fan-zones?res=7&limit=5'")
			}
			if enabled(c.procs, "topk") {
				logger.Info("try: curl 'http://" + c.httpAddr + "/v1/top/artists?from=" + today + "&to=" + today + "&k=10'")
			}
			if enabled(c.procs, similar.Spec.Name) {
				logger.Info("try: curl 'http://" + c.httpAddr + "/v1/users/" + strconv.FormatInt(l.UserID, 10) + "/similar?k=5'")
				logger.Info("try: curl '" + song + "/similar?k=5'")
			}
		}
		key = gen.Key(key[:0])
		r := &kgo.Record{Key: append([]byte(nil), key...), Value: append([]byte(nil), line...)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				logger.Warn("synthetic produce failed", "err", err)
			}
		})
	}
	return nil
}

// enabled reports whether the processor named name is on in c.
func enabled(c processors.Config, name string) bool {
	o, ok := c.Lookup(name)
	return ok && o.Enabled()
}

// produceCatalog sends the catalog feed of gen's songs and artists, so
// that answers carry names (again on a restart: the catalog drops the
// duplicates). sec are the security options.
func produceCatalog(ctx context.Context, gen *generate.Generator, brokers []string, sec []kgo.Opt, logger *slog.Logger) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(catalog.FeedTopic),
		kgo.RecordPartitioner(catalog.Partitioner()), kgo.RecordDeliveryTimeout(2 * time.Minute)}, sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	f := gen.CatalogFeed()
	recs := make([]*kgo.Record, len(f.Lines))
	for i, l := range f.Lines {
		recs[i] = &kgo.Record{Key: []byte(f.Keys[i]), Value: l}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("produce the synthetic catalog feed: %w", err)
	}
	logger.Info("produced the synthetic catalog feed", "topic", catalog.FeedTopic, "records", len(recs), "mess", f.Mess)
	return nil
}

func hostname() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host
}
