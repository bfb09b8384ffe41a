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
	restored      metric.Int64Counter
	aborts        metric.Int64Counter
	commitSeconds metric.Float64Histogram
}

func newInstruments(mp metric.MeterProvider, r *Runner) (*instruments, error) {
	m := mp.Meter("github.com/kappa-stream/kappa/topology")
	var (
		ins  instruments
		errs [9]error
	)
	ins.eventsIn, errs[0] = m.Int64Counter("kappa.events.in",
		metric.WithDescription("Input records consumed, per partition."))
	ins.eventsOut, errs[1] = m.Int64Counter("kappa.events.out",
		metric.WithDescription("Valid input records whose transaction committed, per partition."))
	ins.rejected, errs[2] = m.Int64Counter("kappa.dlq.records",
		metric.WithDescription("Invalid input records sent to the dead-letter topic, per partition."))
	ins.restored, errs[3] = m.Int64Counter("kappa.restore.records",
		metric.WithDescription("Changelog records replayed into stores, per partition."))
	ins.aborts, errs[4] = m.Int64Counter("kappa.transaction.aborts",
		metric.WithDescription("Transactions aborted (a rebalance, a failed produce or commit); their input is processed again."))
	ins.commitSeconds, errs[5] = m.Float64Histogram("kappa.commit.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time from the end of a commit interval to the transaction committed."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	var lag, restoring metric.Int64ObservableGauge
	lag, errs[6] = m.Int64ObservableGauge("kappa.consumer.lag",
		metric.WithDescription("Records between the last stable offset and the committed offset, per partition."))
	restoring, errs[7] = m.Int64ObservableGauge("kappa.restore.remaining",
		metric.WithDescription("Changelog records a restoring partition still has to replay, per partition."))
	if errs[6] == nil && errs[7] == nil {
		_, errs[8] = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			for _, s := range r.Status() {
				attrs := metric.WithAttributes(
					attribute.String(attrGroup, r.cfg.Group),
					attribute.String(attrTopic, r.cfg.Topic),
					attribute.Int(attrPartition, int(s.Partition)))
				o.ObserveInt64(lag, s.Lag(), attrs)
				o.ObserveInt64(restoring, s.RestoreRemaining(), attrs)
			}
			return nil
		}, lag, restoring)
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("topology: metrics: %w", err)
		}
	}
	return &ins, nil
}
