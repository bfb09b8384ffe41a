package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/broker"
	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

var versionRE = regexp.MustCompile(`^v[1-9][0-9]*$`)

// upConfig is the operator configuration of `kappa up`.
type upConfig struct {
	data           string
	kafkaAddr      string
	brokers        []string
	httpAddr       string
	version        string
	partitions     int
	commitInterval time.Duration
	generateRate   float64
	seed           int64
	syncWrites     bool
	logLevel       string
	instanceID     string
	pprof          bool
}

func runUp(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := newFlagSet("up", "All-in-one: starts the embedded Kafka-protocol broker (unless --brokers is given),\n"+
		"provisions the topics, runs every processor and serves the HTTP API. Ctrl-C\n"+
		"stops cleanly; a restart resumes where it stopped.", stderr)
	var c upConfig
	var brokers, rate string
	fs.StringVar(&c.data, "data", "./kappa-data", "data directory: broker log and state stores")
	fs.StringVar(&c.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "listen address of the embedded broker")
	fs.StringVar(&brokers, "brokers", "", "comma-separated seed brokers of an external cluster (no embedded broker)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "HTTP API listen address")
	fs.StringVar(&c.version, "version", "v1", "topology version: consumer groups and state directories carry it")
	fs.IntVar(&c.partitions, "partitions", 12, "partitions of the listens topic when it is created")
	fs.DurationVar(&c.commitInterval, "commit-interval", 100*time.Millisecond, "how often tasks commit state and offsets")
	fs.StringVar(&rate, "generate", "", "synthetic load, events per second, e.g. 5000/s")
	fs.Int64Var(&c.seed, "seed", generate.DefaultSeed, "seed of the synthetic load")
	fs.BoolVar(&c.syncWrites, "sync-writes", false, "fsync every batch the embedded broker receives (survives machine crashes, slower)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.pprof, "pprof", false, "serve Go's /debug/pprof/ profiles on the HTTP address")
	fs.StringVar(&c.instanceID, "instance-id", defaultInstanceID(), "static consumer-group member id: a restart takes the partitions back at once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c.brokers = splitBrokers(brokers)
	if !versionRE.MatchString(c.version) {
		return usageErrorf(fs, "--version %q: want v1, v2, …", c.version)
	}
	if c.partitions < 1 || c.partitions > 10_000 {
		return usageErrorf(fs, "--partitions %d: want 1…10000", c.partitions)
	}
	if c.commitInterval <= 0 {
		return usageErrorf(fs, "--commit-interval must be positive")
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

	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		return err
	}
	defer admCl.Close()
	provisionCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = topology.Provision(provisionCtx, kadm.NewClient(admCl), logger,
		topology.TopicSpec{Name: topicListens, Partitions: int32(c.partitions), Configs: map[string]string{"retention.ms": "-1"}},
		topology.TopicSpec{Name: topicDLQ, Partitions: int32(c.partitions), Configs: map[string]string{"retention.ms": "-1"}},
	)
	cancel()
	if err != nil {
		return fmt.Errorf("provision topics on %s: %w", strings.Join(c.brokers, ","), err)
	}

	storeDir := filepath.Join(c.data, c.version, "rollups")
	store, err := state.Open(storeDir, state.WithLogger(logger), state.WithMeterProvider(tel.provider))
	if err != nil {
		return err
	}
	defer store.Close()

	runner, err := topology.New(topology.Config{
		Brokers:        c.brokers,
		Group:          "kappa." + c.version + ".rollups",
		InstanceID:     c.instanceID,
		Topic:          topicListens,
		DLQTopic:       topicDLQ,
		CommitInterval: c.commitInterval,
		Store:          store,
		NewTask:        func(int32) topology.Task { return rollups.NewTask() },
		Logger:         logger,
		MeterProvider:  tel.provider,
		ClientOpts:     []kgo.Opt{tel.kafkaHooks()},
	})
	if err != nil {
		return err
	}
	ingestCl, err := kgo.NewClient(append(producerOpts(c.brokers), tel.kafkaHooks())...)
	if err != nil {
		return err
	}
	defer ingestCl.Close()
	api, err := serve.New(serve.Config{
		Version: c.version,
		Rollups: rollups.NewReader(store),
		Ready:   runner.Ready,
		Produce: func(ctx context.Context, users []int64, values [][]byte) error {
			recs := make([]*kgo.Record, len(values))
			for i, v := range values {
				recs[i] = &kgo.Record{Key: strconv.AppendInt(nil, users[i], 10), Value: v}
			}
			return ingestCl.ProduceSync(ctx, recs...).FirstErr()
		},
		Metrics: tel.handler,
		Logger:  logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	var handler http.Handler = api
	if c.pprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.Handle("/debug/pprof/heap", pprof.Handler("heap"))
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/", api)
		handler = mux
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("http api listening", "addr", ln.Addr().String(), "version", c.version)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runner.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutCtx)
	})
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
	const span = time.Hour
	gen, err := generate.New(generate.Config{
		Seed:          c.seed,
		Start:         time.Now().UTC(),
		Span:          span,
		Events:        max(int(c.generateRate*span.Seconds()), 1),
		MalformedRate: 0.005,
	})
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(producerOpts(c.brokers)...)
	if err != nil {
		return err
	}
	defer cl.Close()
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
			logger.Info("try: curl 'http://" + c.httpAddr + "/v1/songs/" + strconv.FormatInt(l.SongID, 10) +
				"/plays?from=" + today + "&to=" + today + "&by=country'")
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

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "kappa-up-" + host
}
