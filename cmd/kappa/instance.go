package main

import (
	"context"
	"encoding/json"
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
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/replay"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
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
	// procs is the configuration of the version the instance declares
	// when the cluster has none yet; procsSet is true when a processor
	// flag was given.
	procs    processors
	procsSet bool
	// secFlags are the Kafka security flags; sec the settings they load.
	secFlags *kafkasec.Config
	sec      kafkasec.Settings
}

// deltasPurgeInterval is how often stage 2 deletes the repartition
// records it has committed: the topic keeps only what is in flight.
const deltasPurgeInterval = 10 * time.Second

// liveFinalRetention is how long the final live windows stay on their
// topic for downstream readers.
const liveFinalRetention = 7 * 24 * time.Hour

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

// instance is what the versions of one processing instance share.
type instance struct {
	c          instanceConfig
	logger     *slog.Logger
	adm        *kadm.Client
	dir        *cluster.Directory
	advertise  string
	partitions int32
	// featureParts is the partition count of song-features.
	featureParts int32
	common       topology.Config
	storeOpts    []state.Opt
	liveMetrics  *live.Metrics
}

func runInstance(ctx context.Context, c instanceConfig, tel *telemetry, logger *slog.Logger) error {
	if err := checkKafka(ctx, c.brokers, c.sec.Opts()); err != nil {
		return err
	}
	admCl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, c.sec.Opts()...)...)
	if err != nil {
		return err
	}
	defer admCl.Close()
	inst := &instance{c: c, logger: logger, adm: kadm.NewClient(admCl)}
	provisionCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	inst.partitions, inst.featureParts, err = provision(provisionCtx, inst.adm, logger, c.partitions, c.controlTopic)
	cancel()
	if err != nil {
		return fmt.Errorf("provision topics on %s: %w", strings.Join(c.brokers, ","), err)
	}
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	defer ln.Close()
	inst.advertise = c.advertise
	if inst.advertise == "" {
		inst.advertise = advertisedURL(ln.Addr().(*net.TCPAddr))
	}

	// NB: Pebble charges every memtable to the block cache it is given,
	// so the cache holds --cache-mib of blocks on top of the memtables of
	// a version's stores (at most two each); sized for the blocks alone,
	// the memtables left no room and no block stayed cached.
	stores := 2*int64(inst.partitions) + int64(inst.featureParts)
	cache := state.NewCache(int64(c.cacheMiB)<<20 + stores*2*storeMemTableSize)
	defer cache.Close()
	inst.common = topology.Config{
		Brokers:            c.brokers,
		InstanceID:         c.instanceID,
		CommitInterval:     c.commitInterval,
		SessionTimeout:     c.sessionTimeout,
		TransactionTimeout: c.transactionTimeout,
		Logger:             logger,
		MeterProvider:      tel.provider,
		ClientOpts:         append(c.sec.Opts(), tel.kafkaHooks()),
	}
	inst.storeOpts = []state.Opt{state.WithCache(cache), state.WithMemTableSize(storeMemTableSize),
		state.WithLogger(logger), state.WithMeterProvider(tel.provider)}
	if inst.liveMetrics, err = live.NewMetrics(tel.provider); err != nil {
		return err
	}
	inst.dir, err = cluster.New(cluster.Config{
		Brokers:    c.brokers,
		Topic:      topicInstances,
		InstanceID: c.instanceID,
		HTTP:       inst.advertise,
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
	vs := &versions{inst: inst, running: make(map[string]*versionRun), failed: make(chan *versionRun, 1)}

	catalogCfg := catalog.Config{Brokers: c.brokers, Dir: filepath.Join(c.data, "catalog"), Logger: logger, MeterProvider: tel.provider,
		Sarama: c.sec.Sarama}
	view, err := catalog.NewView(catalogCfg)
	if err != nil {
		return err
	}

	ingestCl, err := kgo.NewClient(append(producerOpts(c.brokers, c.sec.Opts()), tel.kafkaHooks())...)
	if err != nil {
		return err
	}
	defer ingestCl.Close()
	api, err := serve.New(serve.Config{
		Versions: vs,
		Names:    view,
		Ready:    vs.ready,
		Produce: func(ctx context.Context, users []int64, values [][]byte) error {
			recs := make([]*kgo.Record, len(values))
			for i, v := range values {
				recs[i] = &kgo.Record{Key: strconv.AppendInt(nil, users[i], 10), Value: v}
			}
			return ingestCl.ProduceSync(ctx, recs...).FirstErr()
		},
		Metrics: tel.handler,
		Status:  func() any { return vs.status() },
		Logger:  logger,
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
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("http api listening", "addr", ln.Addr().String(), "advertised", inst.advertise, "instance", c.instanceID)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return follower.Run(gctx) })
	g.Go(func() error { return inst.dir.Run(gctx) })
	g.Go(func() error { return runCatalogProcessor(gctx, catalogCfg, logger) })
	g.Go(func() error { return keepRunning(gctx, logger, "catalog view", view.Run) })
	g.Go(func() error {
		defer vs.stopAll()
		return inst.followControl(gctx, admCl, follower, vs)
	})
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

// reconcileInterval is how often an instance retries starting the
// versions that could not start, without a change in the control topic.
const reconcileInterval = 5 * time.Second

// followControl runs the versions the control topic lists until ctx ends
// or a version fails. On a cluster without versions it first declares
// the instance's --version with its processor flags, serving.
func (inst *instance) followControl(ctx context.Context, cl *kgo.Client, f *control.Follower, vs *versions) error {
	select {
	case <-f.Synced():
	case <-ctx.Done():
		return nil
	}
	st := f.State()
	if len(st.Versions) == 0 {
		if err := inst.declareFirst(ctx, cl, f); err != nil {
			return err
		}
		st = f.State()
	} else if inst.c.procsSet {
		inst.logger.Warn("processor flags ignored: every version runs with the configuration it was declared with in "+inst.c.controlTopic+
			"; kappa replay builds a version with another", "serving", st.Serving.Version)
	}
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		vs.reconcile(ctx, st)
		select {
		case <-ctx.Done():
			return nil
		case vr := <-vs.failed:
			return fmt.Errorf("version %s: %w", vr.name, vr.err)
		case <-f.Changed():
		case <-t.C:
		}
		st = f.State()
	}
}

// declareFirst declares the instance's --version, serving, and waits
// until the follower has read it back.
func (inst *instance) declareFirst(ctx context.Context, cl *kgo.Client, f *control.Follower) error {
	config, err := json.Marshal(inst.c.procs)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	v := control.Version{Name: inst.c.version, From: control.FromEarliest, Config: config, Created: now}
	if err := control.PutVersion(ctx, cl, inst.c.controlTopic, v); err != nil {
		return err
	}
	if err := control.PutServing(ctx, cl, inst.c.controlTopic, control.Serving{Version: v.Name, Since: now}); err != nil {
		return err
	}
	inst.logger.Info("declared the first version", "version", v.Name, "config", inst.c.procs.describe())
	for {
		if st := f.State(); st.Serving.Version != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.Changed():
		}
	}
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
	if err := topology.Provision(ctx, adm, logger,
		topology.TopicSpec{Name: topicListens, Partitions: int32(partitions), Configs: forever},
		topology.TopicSpec{Name: topicDLQ, Partitions: int32(partitions), Configs: forever},
		topology.TopicSpec{Name: topicFeatures, Partitions: featurePartitions, Configs: map[string]string{"cleanup.policy": "compact"}},
		topology.TopicSpec{Name: topicFeaturesDLQ, Partitions: featurePartitions, Configs: forever},
		topology.TopicSpec{Name: topicInstances, Partitions: cluster.TopicPartitions, Configs: cluster.TopicConfigs()},
		topology.TopicSpec{Name: controlTopic, Partitions: control.TopicPartitions, Configs: control.TopicConfigs()},
	); err != nil {
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

// provisionVersion creates the internal topics of version n that are
// missing, with p partitions each (features those of song-features).
func provisionVersion(ctx context.Context, adm *kadm.Client, logger *slog.Logger, n replay.Names, p, features int32) error {
	// NB: deltas are kept as long as listens: a stage 2 that was down
	// for a week still finds every delta it has not counted.
	return topology.Provision(ctx, adm, logger,
		topology.TopicSpec{Name: n.Deltas, Partitions: p, Configs: map[string]string{"retention.ms": "-1"}},
		topology.TopicSpec{Name: n.Changelog, Partitions: p, Configs: map[string]string{"cleanup.policy": "compact"}},
		topology.TopicSpec{Name: n.UsersChangelog, Partitions: p, Configs: map[string]string{"cleanup.policy": "compact"}},
		topology.TopicSpec{Name: n.FeaturesChangelog, Partitions: features, Configs: map[string]string{"cleanup.policy": "compact"}},
		topology.TopicSpec{Name: n.LiveFinal, Partitions: p, Configs: map[string]string{"retention.ms": strconv.FormatInt(liveFinalRetention.Milliseconds(), 10)}},
	)
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

// placement locates the stage-2 partition of a rollups key: this
// instance's store when it owns the partition and the store is restored,
// else the owner the directory knows, else nothing (a rebalance).
type placement struct {
	runner     *topology.Runner
	dir        *cluster.Directory
	self       string
	group      string
	partitions int
}

func (pl *placement) Locate(key []byte) serve.Location {
	// NB: murmur2 of the key, as stage 1 routes deltas.
	p := topology.KeyPartition(key, pl.partitions)
	if s, release, ok := pl.runner.Store(p); ok {
		return serve.Location{Store: s, Release: release}
	}
	if id, url, ok := pl.dir.Owner(pl.group, p); ok && id != pl.self {
		return serve.Location{Owner: url}
	}
	return serve.Location{}
}
