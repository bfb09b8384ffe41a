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

	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// instanceConfig is one processing instance: both stages of every
// processor and the HTTP API, against a Kafka cluster.
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
	live               live.Config
	liveOff            bool // --live-windows off: no live windows
	fans               fans.Config
	fanZones           bool // --fan-zones
}

// names are the versioned group, topic and directory names of one
// topology version (DESIGN.md, "Versions and replay").
type names struct {
	usersGroup, aggregatesGroup string
	deltas, changelog           string
	usersChangelog              string
	liveFinal                   string
	usersDir, aggregatesDir     string
}

func versionNames(data, version string) names {
	p := "kappa." + version + "."
	return names{
		usersGroup:      p + "users",
		aggregatesGroup: p + "aggregates",
		deltas:          p + "song-deltas",
		changelog:       p + "rollups-changelog",
		usersChangelog:  p + "users-changelog",
		usersDir:        filepath.Join(data, version, "users"),
		liveFinal:       p + "live-final",
		aggregatesDir:   filepath.Join(data, version, "aggregates"),
	}
}

// deltasPurgeInterval is how often stage 2 deletes the repartition
// records it has committed: the topic keeps only what is in flight.
const deltasPurgeInterval = 10 * time.Second

// liveFinalRetention is how long the final live windows stay on their
// topic for downstream readers.
const liveFinalRetention = 7 * 24 * time.Hour

// storeCacheSize is the block cache all partition stores of an instance share.
const storeCacheSize = 128 << 20

// storeMemTableSize is the memtable size of one partition store; with two
// per store at most, 12 partitions hold at most 768 MiB of memtables.
// (16 MiB cost the rollups a fifth of their backlog throughput.)
const storeMemTableSize = 32 << 20

func runInstance(ctx context.Context, c instanceConfig, tel *telemetry, logger *slog.Logger) error {
	n := versionNames(c.data, c.version)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	provisionCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	partitions, err := provision(provisionCtx, adm, logger, n, c.partitions)
	cancel()
	if err != nil {
		return fmt.Errorf("provision topics on %s: %w", strings.Join(c.brokers, ","), err)
	}
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	defer ln.Close()
	advertise := c.advertise
	if advertise == "" {
		advertise = advertisedURL(ln.Addr().(*net.TCPAddr))
	}

	cache := state.NewCache(storeCacheSize)
	defer cache.Close()
	common := topology.Config{
		Brokers:            c.brokers,
		InstanceID:         c.instanceID,
		CommitInterval:     c.commitInterval,
		SessionTimeout:     c.sessionTimeout,
		TransactionTimeout: c.transactionTimeout,
		Logger:             logger,
		MeterProvider:      tel.provider,
		ClientOpts:         []kgo.Opt{tel.kafkaHooks()},
	}
	users := common
	users.Group, users.Topic, users.DLQTopic = n.usersGroup, topicListens, topicDLQ
	users.ManualTopics = []string{n.deltas}
	storeOpts := []state.Opt{state.WithCache(cache), state.WithMemTableSize(storeMemTableSize),
		state.WithLogger(logger), state.WithMeterProvider(tel.provider)}
	var fanProc *fans.Processor
	if c.fanZones {
		if fanProc, err = fans.NewProcessor(c.fans); err != nil {
			return err
		}
		users.Changelog, users.StoreDir, users.StoreOpts = n.usersChangelog, n.usersDir, storeOpts
	}
	users.NewTask = func(p int32, s *state.Store) (topology.Task, error) {
		t := &listensTask{rollups: rollups.NewUserTask(n.deltas, partitions)}
		if !c.liveOff {
			t.live = live.NewCollector(c.live, p, n.deltas, partitions)
		}
		if fanProc != nil {
			t.fans = fans.NewCollector(fanProc, s, n.deltas, partitions)
		}
		return t, nil
	}
	stage1, err := topology.New(users)
	if err != nil {
		return err
	}
	aggregates := common
	aggregates.Group, aggregates.Topic, aggregates.Changelog = n.aggregatesGroup, n.deltas, n.changelog
	aggregates.StoreDir = n.aggregatesDir
	aggregates.PurgeInterval = deltasPurgeInterval
	aggregates.StoreOpts = storeOpts
	liveMetrics, err := live.NewMetrics(tel.provider)
	if err != nil {
		return err
	}
	aggregates.NewTask = func(_ int32, s *state.Store) (topology.Task, error) {
		t := &aggregatesTask{rollups: rollups.NewAggregateTask(s)}
		if fanProc != nil {
			t.fans = fans.NewCountTask(s)
		}
		if !c.liveOff {
			var err error
			if t.live, err = live.NewTask(c.live, s, partitions, n.liveFinal, liveMetrics); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	stage2, err := topology.New(aggregates)
	if err != nil {
		return err
	}

	dir, err := cluster.New(cluster.Config{
		Brokers:    c.brokers,
		Topic:      topicInstances,
		InstanceID: c.instanceID,
		HTTP:       advertise,
		Groups:     map[string]string{n.aggregatesGroup: n.deltas},
		Logger:     logger,
		ClientOpts: []kgo.Opt{tel.kafkaHooks()},
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
		Rollups: &placement{runner: stage2, dir: dir, self: c.instanceID, group: n.aggregatesGroup,
			route: kgo.StickyKeyPartitioner(nil).ForTopic(n.deltas), partitions: int(partitions)},
		Live: liveServed(c),
		Fans: fansServed(c),
		Ready: func(ctx context.Context) (bool, error) {
			for _, r := range []*topology.Runner{stage1, stage2} {
				if ok, err := r.Ready(ctx); !ok || err != nil {
					return false, err
				}
			}
			return true, nil
		},
		Produce: func(ctx context.Context, users []int64, values [][]byte) error {
			recs := make([]*kgo.Record, len(values))
			for i, v := range values {
				recs[i] = &kgo.Record{Key: strconv.AppendInt(nil, users[i], 10), Value: v}
			}
			return ingestCl.ProduceSync(ctx, recs...).FirstErr()
		},
		Metrics: tel.handler,
		Status: func() any {
			return instanceStatus{
				Instance: c.instanceID, Version: c.version, HTTP: advertise,
				Stages: []stageStatus{
					{Group: n.usersGroup, Topic: topicListens, Partitions: stage1.Status()},
					{Group: n.aggregatesGroup, Topic: n.deltas, Partitions: stage2.Status()},
				},
			}
		},
		Logger: logger,
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
	logger.Info("http api listening", "addr", ln.Addr().String(), "advertised", advertise, "version", c.version, "instance", c.instanceID)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return stage1.Run(gctx) })
	g.Go(func() error { return stage2.Run(gctx) })
	g.Go(func() error { return dir.Run(gctx) })
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

// fansServed is the fan-zones configuration the API serves, nil when off.
func fansServed(c instanceConfig) *fans.Config {
	if !c.fanZones {
		return nil
	}
	return &c.fans
}

// liveServed is the live configuration the API serves, nil when off.
func liveServed(c instanceConfig) *live.Config {
	if c.liveOff {
		return nil
	}
	return &c.live
}

// provision creates the topics of version n that are missing and returns
// the partition count of the listens topic, which every internal topic
// shares.
func provision(ctx context.Context, adm *kadm.Client, logger *slog.Logger, n names, partitions int) (int32, error) {
	forever := map[string]string{"retention.ms": "-1"}
	if err := topology.Provision(ctx, adm, logger,
		topology.TopicSpec{Name: topicListens, Partitions: int32(partitions), Configs: forever},
		topology.TopicSpec{Name: topicDLQ, Partitions: int32(partitions), Configs: forever},
	); err != nil {
		return 0, err
	}
	details, err := adm.ListTopics(ctx, topicListens)
	if err != nil {
		return 0, err
	}
	d, ok := details[topicListens]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return 0, fmt.Errorf("topic %s: not found after creating it", topicListens)
	}
	p := int32(len(d.Partitions))
	// NB: deltas are kept as long as listens: a stage 2 that was down
	// for a week still finds every delta it has not counted.
	return p, topology.Provision(ctx, adm, logger,
		topology.TopicSpec{Name: topicInstances, Partitions: cluster.TopicPartitions, Configs: cluster.TopicConfigs()},
		topology.TopicSpec{Name: n.deltas, Partitions: p, Configs: forever},
		topology.TopicSpec{Name: n.changelog, Partitions: p, Configs: map[string]string{"cleanup.policy": "compact"}},
		topology.TopicSpec{Name: n.usersChangelog, Partitions: p, Configs: map[string]string{"cleanup.policy": "compact"}},
		topology.TopicSpec{Name: n.liveFinal, Partitions: p, Configs: map[string]string{"retention.ms": strconv.FormatInt(liveFinalRetention.Milliseconds(), 10)}},
	)
}

// instanceStatus is the body of GET /v1/status.
type instanceStatus struct {
	Instance string        `json:"instance"`
	Version  string        `json:"version"`
	HTTP     string        `json:"http"`
	Stages   []stageStatus `json:"stages"`
}

type stageStatus struct {
	Group      string                     `json:"group"`
	Topic      string                     `json:"topic"`
	Partitions []topology.PartitionStatus `json:"partitions"`
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
	route      kgo.TopicPartitioner // murmur2 of the key, as stage 1 routes deltas
	partitions int
}

func (pl *placement) Locate(key []byte) serve.Location {
	p := int32(pl.route.Partition(&kgo.Record{Key: key}, pl.partitions))
	if s, release, ok := pl.runner.Store(p); ok {
		return serve.Location{Store: s, Release: release}
	}
	if id, url, ok := pl.dir.Owner(pl.group, p); ok && id != pl.self {
		return serve.Location{Owner: url}
	}
	return serve.Location{}
}
