package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/kafkasec"
)

// securityFlags declares the Kafka security flags (TLS, SASL) on fs.
// Every command that talks to Kafka has them.
func securityFlags(fs *flag.FlagSet) *kafkasec.Config {
	c := new(kafkasec.Config)
	c.Flags(fs)
	return c
}

// loadSecurity reads the files and the environment the security flags
// name; a problem is a usage error.
func loadSecurity(fs *flag.FlagSet, c *kafkasec.Config) (kafkasec.Settings, error) {
	s, err := c.Load(os.Getenv)
	if err != nil {
		return kafkasec.Settings{}, usageErrorf(fs, "%s", err)
	}
	return s, nil
}

// checkTimeout bounds checkKafka.
const checkTimeout = 15 * time.Second

// checkKafka fails, saying why, when the brokers cannot be reached with
// opts (TLS or SASL refused, nothing listening), instead of leaving the
// clients to retry.
func checkKafka(ctx context.Context, brokers []string, opts []kgo.Opt) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if err := kafkasec.Check(ctx, append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...); err != nil {
		return fmt.Errorf("kafka at %s: %w", strings.Join(brokers, ","), err)
	}
	return nil
}
