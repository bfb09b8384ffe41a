// Package broker runs the embedded Kafka-protocol broker that `kappa up`
// uses when no external cluster is given: franz-go's kfake with a data
// directory, so the log survives a restart. Any Kafka client can connect
// to it.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// Dir keeps the log, group offsets and transaction state (required).
	Dir string
	// Addr is the host:port to listen on (default 127.0.0.1:9092). Port 0
	// picks a free port; see Broker.Addr.
	Addr string
	// SyncWrites fsyncs every produced batch. Without it writes reach the
	// OS page cache, which survives a crash of the process (kill -9) but
	// not of the machine.
	SyncWrites bool
	// Logger receives the broker's warnings and errors (default: discard).
	Logger *slog.Logger
}

// Validate reports a missing or malformed setting.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("broker: no data directory")
	}
	if _, _, err := splitAddr(c.Addr); err != nil {
		return err
	}
	return nil
}

func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		addr = "127.0.0.1:9092"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("broker: address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("broker: address %q: bad port", addr)
	}
	return host, port, nil
}

// minSessionTimeout is the shortest group session timeout the broker
// accepts.
const minSessionTimeout = time.Second

// Broker is a running embedded broker. Close stops it.
type Broker struct {
	c *kfake.Cluster
}

// Start starts the broker, loading the log already in cfg.Dir.
func Start(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := splitAddr(cfg.Addr)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(cfg.Dir),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.WithLogger(logAdapter{logger}),
		// NB: Kafka's default floor is 6 s; one machine's members can
		// be declared dead sooner, for a faster failover.
		kfake.GroupMinSessionTimeout(minSessionTimeout),
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start on %s:%d with data in %q: %w", host, port, cfg.Dir, err)
	}
	return &Broker{c: c}, nil
}

// Addr is the address clients connect to.
func (b *Broker) Addr() string { return b.c.ListenAddrs()[0] }

// Close stops the broker and writes its state to the data directory.
func (b *Broker) Close() { b.c.Close() }

type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		a.l.Error(fmt.Sprintf(msg, args...), "component", "broker")
	case kfake.LogLevelWarn:
		a.l.Warn(fmt.Sprintf(msg, args...), "component", "broker")
	}
}
