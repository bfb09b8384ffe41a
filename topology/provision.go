package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicSpec describes a topic to provision.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Configs are topic configs, e.g. "retention.ms": "-1".
	Configs map[string]string
}

// Provision creates the topics that do not exist yet, with the broker's
// default replication factor. It is idempotent: an existing topic is left
// as it is, and a partition count different from the spec is logged, not
// changed (the keyed data in it would move).
func Provision(ctx context.Context, adm *kadm.Client, logger *slog.Logger, specs ...TopicSpec) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for _, s := range specs {
		configs := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			configs[k] = &v
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, -1, configs, s.Name)
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
			logger.Info("topic created", attrTopic, s.Name, "partitions", s.Partitions)
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
