package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicPartitions is the partition count the directory topic should be
// created with: one, so that every instance reads all advertisements in
// the order they were written.
const TopicPartitions = 1

// TopicConfigs returns the topic configs the directory topic should be
// created with: compaction, so the topic keeps the latest record of every
// instance however long the cluster runs.
func TopicConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "compact"}
}

// Config configures a Directory. Zero fields take the documented defaults.
type Config struct {
	// Brokers are the seed brokers (required).
	Brokers []string
	// Topic is the directory topic (required), e.g. "kappa.instances":
	// every instance advertises itself there and follows it. Create it
	// with TopicPartitions and TopicConfigs.
	Topic string
	// InstanceID names this instance (required). It must be the static
	// membership id (kgo.InstanceID) of this instance's consumer group
	// members: group assignments name their owners by it.
	InstanceID string
	// HTTP is the base URL other instances reach this instance's HTTP API
	// at (required), e.g. "http://10.0.0.7:8080": absolute, http or https,
	// no query. A trailing slash is dropped.
	HTTP string
	// Groups maps each consumer group whose partition owners the
	// directory tracks from the start to the input topic whose partitions
	// that group assigns, e.g.
	// {"kappa.v1.aggregates": "kappa.v1.song-deltas"}. Directory.Track
	// and Untrack change the set while it runs.
	Groups map[string]string
	// RefreshInterval is how often the groups' assignments are described
	// (default 500 ms). An owner the directory reports is at most this
	// old, plus one describe round trip.
	RefreshInterval time.Duration
	// Logger receives directory events (default: discard).
	Logger *slog.Logger
	// ClientOpts are extra franz-go options, e.g. TLS, SASL or hooks.
	ClientOpts []kgo.Opt
}

func (c *Config) setDefaults() {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.HTTP = strings.TrimSuffix(c.HTTP, "/")
}

// Validate reports a missing or malformed setting.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("cluster: no brokers")
	case c.Topic == "":
		return errors.New("cluster: no directory topic")
	case c.InstanceID == "":
		return errors.New("cluster: no instance id")
	case c.RefreshInterval < 0:
		return fmt.Errorf("cluster: negative refresh interval %s", c.RefreshInterval)
	}
	for g, t := range c.Groups {
		if g == "" || t == "" {
			return fmt.Errorf("cluster: group %q with topic %q: both must be set", g, t)
		}
	}
	if err := checkBaseURL(c.HTTP); err != nil {
		return fmt.Errorf("cluster: advertised HTTP address: %w", err)
	}
	return nil
}

// checkBaseURL accepts an absolute http or https URL without query or
// fragment, the form requests are forwarded to by appending a path.
func checkBaseURL(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if !strings.Contains(s, "://") {
		return fmt.Errorf("%q: want http://host:port", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: scheme must be http or https", s)
	case u.Host == "":
		return fmt.Errorf("%q: no host", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q: must be scheme://host[:port][/path] only", s)
	}
	return nil
}
