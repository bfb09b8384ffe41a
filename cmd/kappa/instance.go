package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/catalog"
	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/kafkasec"
	"github.com/kappa-stream/kappa/privacy"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/replay"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
	"github.com/kappa-stream/kappa/web"
)

// instanceConfig is one processing instance: both stages of every
// processor of every version the control topic lists, and the HTTP API,
// against a Kafka cluster.
type instanceConfig struct {
	brokers            []string
	data               string
	version            string
	instanceID         string
	httpAddr           string
	advertise          string
	partitions         int
	commitInterval     time.Duration
	sessionTimeout     time.Duration
	transactionTimeout time.Duration
	pprof              bool
	cacheMiB           int
	recentMiB          int
	similarCacheMiB    int
	controlTopic       string
	maxFuture          time.Duration
	// procs is the configuration of the version the instance declares
	// when the cluster has none yet; procsSet is true when a processor
	// flag was given.
	procs    processors.Config
	procsSet bool
	// partnerEpsilon is the ε of each release of the partner API;
	// partnerDayEpsilon caps what all keys together may be charged for
	// one data day (0: no cap).
	partnerEpsilon, partnerDayEpsilon float64
	// auth is the access control of the HTTP API (keys.go).
	auth authConfig
	// sink is the Parquet sink's configuration (sink.go).
	sink sinkConfig
	// secFlags are the Kafka security flags; sec the settings they load.
	secFlags *kafkasec.Config
	sec      kafkasec.Settings
}

// defaultCacheMiB is the default size of the block cache all partition
// stores of an instance share (--cache-mib).
const defaultCacheMiB = 512

// defaultRecentMiB is the default memory of the values stage-2 tasks
// wrote lately (--recent-mib), split among a version's stage-2
// partitions: at 100,000 listens/s, reading a day row back from Pebble
// for each update took most of stage 2's commit (a freshness p99 of
// 575–640 ms; 410–427 ms with the rows in memory).
const defaultRecentMiB = 128

// defaultSimilarCacheMiB is the default memory of the similarity items
// (users' signatures, songs' vectors) stage-2 stores keep once read by a
// query (--similar-cache-mib), split among the partitions: seven eighths
// for items, which must all fit for queries to read none from Pebble
// (a user's signature is 2 KiB: 100,000 users take 200 MiB), the rest
// for bucket chunks.
const defaultSimilarCacheMiB = 512

// storeMemTableSize is the memtable size of one partition store; with two
// per store at most, 12 partitions hold at most 768 MiB of memtables.
// (16 MiB cost the rollups a fifth of their backlog throughput.)
const storeMemTableSize = 32 << 20

func runInstance(ctx context.Context, c instanceConfig, tel *telemetry, logger *slog.Logger) error {
	if err := checkKafka(ctx, c.brokers, c.sec.Opts()); err != nil {
		return err
	}
	admCl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, c.sec.Opts()...)...)
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	provisionCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	partitions, featureParts, err := provision(provisionCtx, adm, logger, c.partitions, c.controlTopic)
	cancel()
	if err != nil {
		return fmt.Errorf("provision topics on %s: %w", strings.Join(c.brokers, ","), err)
	}
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	defer ln.Close()
	guardCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	gd, err := newGuard(guardCtx, c.auth, c.brokers, adm, ln.Addr(), logger, append(c.sec.Opts(), tel.kafkaHooks())...)
	cancel()
	if err != nil {
		return err
	}
	advertise := c.advertise
	if advertise == "" {
		advertise = advertisedURL(ln.Addr().(*net.TCPAddr))
	}

	// NB: Pebble charges every memtable to the block cache it is given,
	// so the cache holds --cache-mib of blocks on top of the memtables of
	// a version's stores (at most two each); sized for the blocks alone,
	// the memtables left no room and no block stayed cached.
	stores := 2*int64(partitions) + int64(featureParts)
	cache := state.NewCache(int64(c.cacheMiB)<<20 + stores*2*storeMemTableSize)
	defer cache.Close()
	dir, err := cluster.New(cluster.Config{
		Brokers:    c.brokers,
		Topic:      topicInstances,
		InstanceID: c.instanceID,
		HTTP:       advertise,
		Logger:     logger,
		ClientOpts: append(c.sec.Opts(), tel.kafkaHooks()),
	})
	if err != nil {
		return err
	}
	follower, err := control.NewFollower(c.brokers, c.controlTopic, logger, append(c.sec.Opts(), tel.kafkaHooks())...)
	if err != nil {
		return err
	}
	rt := replay.NewRuntime(replay.RuntimeConfig{
		Data: c.data, Input: topicListens, DLQ: topicDLQ, Partitions: partitions,
		ControlTopic: c.controlTopic,
		Specs:        c.procs.Specs(), Declare: c.procs, Version: c.version, Configured: c.procsSet,
		Stage: topology.Config{
			Brokers:            c.brokers,
			InstanceID:         c.instanceID,
			CommitInterval:     c.commitInterval,
			SessionTimeout:     c.sessionTimeout,
			TransactionTimeout: c.transactionTimeout,
			Logger:             logger,
			MeterProvider:      tel.provider,
			ClientOpts:         append(c.sec.Opts(), tel.kafkaHooks()),
		},
		StoreOpts: []state.Opt{state.WithCache(cache), state.WithMemTableSize(storeMemTableSize),
			state.WithLogger(logger), state.WithMeterProvider(tel.provider)},
		RecentMiB: c.recentMiB, SimilarCacheMiB: c.similarCacheMiB,
		Admin: adm, Client: admCl, Directory: dir, Advertise: advertise, Logger: logger,
		MaxFuture: c.maxFuture,
	})

	catalogCfg := catalog.Config{Brokers: c.brokers, Dir: filepath.Join(c.data, "catalog"), Logger: logger, MeterProvider: tel.provider,
		Sarama: c.sec.Sarama}
	view, err := catalog.NewView(catalogCfg)
	if err != nil {
		return err
	}

	releaseLog, err := privacy.NewKafkaLog(c.brokers, append(c.sec.Opts(), tel.kafkaHooks())...)
	if err != nil {
		return err
	}
	defer releaseLog.Close()
	releases, err := privacy.New(ctx, privacy.Config{Log: releaseLog, DayEpsilon: c.partnerDayEpsilon, Logger: logger})
	if err != nil {
		return fmt.Errorf("the partner API's releases and budgets: %w", err)
	}
	sink, err := newSink(c, tel, logger)
	if err != nil {
		return err
	}

	ingestCl, err := kgo.NewClient(append(producerOpts(c.brokers, c.sec.Opts()), tel.kafkaHooks())...)
	if err != nil {
		return err
	}
	defer ingestCl.Close()
	ui, err := web.New()
	if err != nil {
		return err
	}
	api, err := serve.New(serve.Config{
		Versions: rt,
		Names:    view,
		Search:   view,
		UI:       ui,
		Ready:    rt.Ready,
		Produce: func(ctx context.Context, users []int64, values [][]byte) error {
			recs := make([]*kgo.Record, len(values))
			for i, v := range values {
				recs[i] = &kgo.Record{Key: strconv.AppendInt(nil, users[i], 10), Value: v}
			}
			return ingestCl.ProduceSync(ctx, recs...).FirstErr()
		},
		Metrics: tel.handler,
		Status:  statusWithSink(rt, sink),
		Logger:  logger,
		Peers:   gd.cluster.Transport(nil),
		Floors:  &c.auth.floors,
		Partner: &serve.Partner{Auth: partners{gd.keys}, Releases: releases, Epsilon: c.partnerEpsilon},
	})
	if err != nil {
		return err
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
	if handler, err = gd.wrap(handler, logger); err != nil {
		return err
	}
	srv := serve.NewHTTPServer(handler, serve.Limits{}, logger)
	srv.RegisterOnShutdown(api.CloseStreams)
	logger.Info("http api listening", "addr", ln.Addr().String(), "advertised", advertise, "instance", c.instanceID)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return follower.Run(gctx) })
	g.Go(func() error { return gd.keys.Run(gctx) })
	g.Go(func() error { return dir.Run(gctx) })
	g.Go(func() error { return runCatalogProcessor(gctx, catalogCfg, logger) })
	g.Go(func() error { return keepRunning(gctx, logger, "catalog view", view.Run) })
	if sink != nil {
		g.Go(func() error { return keepRunning(gctx, logger, "parquet sink", sink.Run) })
	}
	g.Go(func() error { return rt.Run(gctx, follower) })
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
		// NB: Shutdown waits for idle connections that never sent a
		// request (clients open spare ones); past the grace period
		// they are just closed.
		if err := srv.Shutdown(shutCtx); err != nil {
			logger.Warn("http: closing connections still open after 5 s", "err", err)
			srv.Close()
		}
		return nil
	})
	return g.Wait()
}

// provision creates the topics every version shares that are missing and
// returns the partition counts of the listens topic, which every internal
// topic of stages 1 and 2 shares, and of song-features, which the
// features stage's changelog shares.
func provision(ctx context.Context, adm *kadm.Client, logger *slog.Logger, partitions int, controlTopic string) (listens, features int32, err error) {
	forever := map[string]string{"retention.ms": "-1"}
	if err := provisionCatalog(ctx, adm, logger); err != nil {
		return 0, 0, err
	}
	specs := []topology.TopicSpec{
		{Name: topicListens, Partitions: int32(partitions), Configs: forever},
		{Name: topicDLQ, Partitions: int32(partitions), Configs: forever},
		{Name: topicFeatures, Partitions: featurePartitions, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: topicFeaturesDLQ, Partitions: featurePartitions, Configs: forever},
		{Name: topicInstances, Partitions: cluster.TopicPartitions, Configs: cluster.TopicConfigs()},
		{Name: controlTopic, Partitions: control.TopicPartitions, Configs: control.TopicConfigs()},
	}
	if err := topology.Provision(ctx, adm, logger, append(specs, privacy.Topics()...)...); err != nil {
		return 0, 0, err
	}
	details, err := adm.ListTopics(ctx, topicListens, topicFeatures)
	if err != nil {
		return 0, 0, err
	}
	count := func(topic string) (int32, error) {
		d, ok := details[topic]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return 0, fmt.Errorf("topic %s: not found after creating it", topic)
		}
		return int32(len(d.Partitions)), nil
	}
	if listens, err = count(topicListens); err != nil {
		return 0, 0, err
	}
	features, err = count(topicFeatures)
	return listens, features, err
}

// advertisedURL is the base URL other instances reach the API at: the
// listen address, or the host name when it listens on every interface.
func advertisedURL(addr *net.TCPAddr) string {
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = hostname()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}
