package topology

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

type instruments struct {
	eventsIn      metric.Int64Counter
	eventsOut     metric.Int64Counter
	rejected      metric.Int64Counter
	commitSeconds metric.Float64Histogram
}

func newInstruments(mp metric.MeterProvider, r *Runner) (*instruments, error) {
	m := mp.Meter("github.com/kappa-stream/kappa/topology")
	var (
		ins  instruments
		errs [6]error
	)
	ins.eventsIn, errs[0] = m.Int64Counter("kappa.events.in",
		metric.WithDescription("Input records consumed, per partition."))
	ins.eventsOut, errs[1] = m.Int64Counter("kappa.events.out",
		metric.WithDescription("Valid input records committed to the store, per partition."))
	ins.rejected, errs[2] = m.Int64Counter("kappa.dlq.records",
		metric.WithDescription("Invalid input records sent to the dead-letter topic, per partition."))
	ins.commitSeconds, errs[3] = m.Float64Histogram("kappa.commit.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time to commit one task's batch and offsets to the store."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	var lag metric.Int64ObservableGauge
	lag, errs[4] = m.Int64ObservableGauge("kappa.consumer.lag",
		metric.WithDescription("Records between the log end and the offset the store reflects, per partition."))
	if errs[4] == nil {
		_, errs[5] = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			for _, s := range r.Status() {
				o.ObserveInt64(lag, s.Lag(), metric.WithAttributes(
					attribute.String(attrTopic, r.cfg.Topic),
					attribute.Int(attrPartition, int(s.Partition))))
			}
			return nil
		}, lag)
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("topology: metrics: %w", err)
		}
	}
	return &ins, nil
}
