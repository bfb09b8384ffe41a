package main

import (
	"context"
	"flag"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/registry"
	"github.com/kappa-stream/kappa/serve"
)

var instanceIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// instanceFlags declares the flags every processing instance has.
func instanceFlags(fs *flag.FlagSet, c *instanceConfig, defaultID string) {
	fs.StringVar(&c.data, "data", "./kappa-data", "data directory: state stores (and the embedded broker's log)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "HTTP API listen address")
	fs.StringVar(&c.advertise, "advertise", "", "base URL other instances forward queries to (default: http://<--http address>)")
	fs.StringVar(&c.version, "version", "v1", "topology version declared, with the processor flags, when the cluster has none yet; later ones come from kappa replay")
	fs.IntVar(&c.partitions, "partitions", 12, "partitions of the listens topic (and the internal topics) when it is created")
	fs.DurationVar(&c.commitInterval, "commit-interval", 100*time.Millisecond, "how long one transaction collects input")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 6*time.Second, "how long the group waits for a dead instance before moving its partitions")
	fs.DurationVar(&c.transactionTimeout, "transaction-timeout", 10*time.Second, "how long the broker waits before aborting a dead instance's open transaction")
	fs.StringVar(&c.instanceID, "instance-id", defaultID, "unique id of this instance in its groups: a restart with the same id takes its partitions back at once")
	fs.BoolVar(&c.pprof, "pprof", false, "serve Go's /debug/pprof/ profiles on the HTTP address")
	fs.IntVar(&c.cacheMiB, "cache-mib", defaultCacheMiB, "MiB of block cache the state stores share, on top of their memtables: queries that read many keys (similar users and songs) are fast only when their tables fit")
	fs.IntVar(&c.recentMiB, "recent-mib", defaultRecentMiB, "MiB of the day rows stage 2 wrote lately, kept in memory so that updating a hot one does not read the store (0: none)")
	fs.IntVar(&c.similarCacheMiB, "similar-cache-mib", defaultSimilarCacheMiB, "with --similar, MiB of the users' signatures and songs' vectors kept in memory once a query read them (0: none)")
	fs.DurationVar(&c.maxFuture, "max-future", events.DefaultMaxFuture, "listens whose ts lies more than this after their record's timestamp go to listens.dlq (the same on every instance)")
	fs.StringVar(&c.controlTopic, "control-topic", topicControl, "compacted topic that holds the versions and the serving one; every instance of a deployment follows the same")
	c.procs = registry.NewConfig()
	c.procs.Flags(fs)
	authFlags(fs, &c.auth)
	fs.Float64Var(&c.partnerEpsilon, "partner-epsilon", serve.DefaultPartnerEpsilon, "ε of each release of the partner API (/partner/v1): what a request that draws new releases charges its key, once")
	fs.Float64Var(&c.partnerDayEpsilon, "partner-day-epsilon", 0, "most ε all partner keys together may be charged for the releases of one data day (0: no cap)")
	sinkFlags(fs, &c.sink)
	c.secFlags = securityFlags(fs)
}

// checkInstance validates the instance flags.
func checkInstance(fs *flag.FlagSet, c *instanceConfig) error {
	switch {
	case !control.ValidName(c.version):
		return usageErrorf(fs, "--version %q: want v1, v2, …", c.version)
	case !instanceIDRE.MatchString(c.instanceID):
		return usageErrorf(fs, "--instance-id %q: want letters, digits, '.', '_' or '-'", c.instanceID)
	case c.partitions < 1 || c.partitions > 10_000:
		return usageErrorf(fs, "--partitions %d: want 1…10000", c.partitions)
	case c.cacheMiB < 8:
		return usageErrorf(fs, "--cache-mib %d: want 8 or more", c.cacheMiB)
	case c.recentMiB < 0:
		return usageErrorf(fs, "--recent-mib %d: want 0 or more", c.recentMiB)
	case c.similarCacheMiB < 0:
		return usageErrorf(fs, "--similar-cache-mib %d: want 0 or more", c.similarCacheMiB)
	case !(c.partnerEpsilon > 0) || c.partnerDayEpsilon < 0:
		return usageErrorf(fs, "--partner-epsilon must be positive and --partner-day-epsilon 0 or more")
	case c.commitInterval <= 0:
		return usageErrorf(fs, "--commit-interval must be positive")
	case c.maxFuture <= 0:
		return usageErrorf(fs, "--max-future must be positive")
	case c.sessionTimeout <= 0 || c.transactionTimeout <= 0:
		return usageErrorf(fs, "--session-timeout and --transaction-timeout must be positive")
	}
	if err := c.procs.Validate(); err != nil {
		return usageErrorf(fs, "%s", err)
	}
	var err error
	if c.sec, err = loadSecurity(fs, c.secFlags); err != nil {
		return err
	}
	if err := c.sink.check(); err != nil {
		return usageErrorf(fs, "%s", err)
	}
	if err := checkAuth(fs, &c.auth); err != nil {
		return err
	}
	names := c.procs.FlagNames()
	fs.Visit(func(f *flag.Flag) {
		c.procsSet = c.procsSet || slices.Contains(names, f.Name)
	})
	return nil
}

func runProcess(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := newFlagSet("process", "Runs one processing instance against a Kafka cluster: every processor's\n"+
		"stages as members of their consumer groups, and the HTTP API, which answers for\n"+
		"any key (forwarding to the instance that owns it). Start several with distinct\n"+
		"--instance-id to scale out; they share the work and take over from each other.", stderr)
	var c instanceConfig
	var brokers, logLevel string
	instanceFlags(fs, &c, hostname())
	fs.StringVar(&brokers, "brokers", "", "comma-separated seed brokers (required)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.brokers = splitBrokers(brokers); len(c.brokers) == 0 {
		return usageErrorf(fs, "--brokers is required")
	}
	if err := checkInstance(fs, &c); err != nil {
		return err
	}
	logger, err := newLogger(stderr, logLevel)
	if err != nil {
		return usageErrorf(fs, "--log-level: %s", err)
	}
	tel, err := newTelemetry()
	if err != nil {
		return err
	}
	defer tel.provider.Shutdown(context.WithoutCancel(ctx))
	err = runInstance(ctx, c, tel, logger)
	logger.Info("stopped", "err", err)
	return err
}
