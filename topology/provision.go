package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// minISR is the topic config of the replicas that must have a write
// before it is acknowledged (producers use acks=all).
const minISR = "min.insync.replicas"

// TopicSpec describes a topic to provision.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Configs are topic configs, e.g. "retention.ms": "-1".
	Configs map[string]string
}

// MaxReplication is the replication factor of the topics Provision
// creates on a cluster of that many brokers or more.
const MaxReplication = 3

// Provision creates the topics that do not exist yet, replicated on
// min(MaxReplication, brokers) brokers (a broker's default is often 1,
// whatever the size of the cluster), with min.insync.replicas 2 when
// replicated three times (unless the spec sets it): an acknowledged
// write, transaction markers included, is then on two brokers. It is
// idempotent: an existing topic is left as it is, and a partition count
// different from the spec is logged, not changed (the keyed data in it
// would move).
func Provision(ctx context.Context, adm *kadm.Client, logger *slog.Logger, specs ...TopicSpec) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("topology: list the brokers: %w", err)
	}
	if len(md.Brokers) == 0 {
		return errors.New("topology: the cluster lists no broker")
	}
	rf := int16(min(MaxReplication, len(md.Brokers)))
	var errs []error
	for _, s := range specs {
		configs := make(map[string]*string, len(s.Configs)+1)
		for k, v := range s.Configs {
			configs[k] = &v
		}
		if _, ok := configs[minISR]; !ok && rf >= 3 {
			two := "2"
			configs[minISR] = &two
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, rf, configs, s.Name)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
			if err := checkPartitions(ctx, adm, logger, s); err != nil {
				errs = append(errs, err)
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("topology: create topic %s: %w", s.Name, err))
		case resp.Err != nil:
			errs = append(errs, fmt.Errorf("topology: create topic %s: %w", s.Name, resp.Err))
		default:
			logger.Info("topic created", attrTopic, s.Name, "partitions", s.Partitions, "replication", rf)
		}
	}
	return errors.Join(errs...)
}

func checkPartitions(ctx context.Context, adm *kadm.Client, logger *slog.Logger, s TopicSpec) error {
	details, err := adm.ListTopics(ctx, s.Name)
	if err != nil {
		return fmt.Errorf("topology: describe topic %s: %w", s.Name, err)
	}
	d, ok := details[s.Name]
	if !ok {
		return fmt.Errorf("topology: describe topic %s: not in the metadata", s.Name)
	}
	if d.Err != nil {
		return fmt.Errorf("topology: describe topic %s: %w", s.Name, d.Err)
	}
	if n := int32(len(d.Partitions)); n != s.Partitions {
		logger.Warn("existing topic has a different partition count; keeping it", attrTopic, s.Name, "partitions", n, "wanted", s.Partitions)
	}
	return nil
}
