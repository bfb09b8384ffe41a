package parquet

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

type instruments struct {
	rows, rejected, files, bytes, aborts, catalogWrites metric.Int64Counter
	epochSeconds                                        metric.Float64Histogram
}

func newInstruments(mp metric.MeterProvider, s *Sink) (*instruments, error) {
	m := mp.Meter("github.com/kappa-stream/kappa/sinks/parquet")
	var (
		ins  instruments
		errs [10]error
	)
	ins.rows, errs[0] = m.Int64Counter("kappa.sink.rows",
		metric.WithDescription("Valid listens published in Parquet files."))
	ins.rejected, errs[1] = m.Int64Counter("kappa.sink.rejected",
		metric.WithDescription("Invalid listens skipped by the sink (they are in listens.dlq)."))
	ins.files, errs[2] = m.Int64Counter("kappa.sink.files",
		metric.WithDescription("Parquet files published into the listens table."))
	ins.bytes, errs[3] = m.Int64Counter("kappa.sink.bytes",
		metric.WithUnit("By"),
		metric.WithDescription("Bytes of the Parquet files published into the listens table."))
	ins.aborts, errs[4] = m.Int64Counter("kappa.sink.aborts",
		metric.WithDescription("Epochs aborted (a rebalance, a failed produce); their records are read again."))
	ins.catalogWrites, errs[5] = m.Int64Counter("kappa.sink.catalog.writes",
		metric.WithDescription("Rewrites of the catalog tables."))
	ins.epochSeconds, errs[6] = m.Float64Histogram("kappa.sink.epoch.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time from an epoch's start to its files published."),
		metric.WithExplicitBucketBoundaries(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
	var lag, committed metric.Int64ObservableGauge
	lag, errs[7] = m.Int64ObservableGauge("kappa.sink.lag",
		metric.WithDescription("Records between the last stable offset and the sink's committed offset, per partition."))
	committed, errs[8] = m.Int64ObservableGauge("kappa.sink.committed",
		metric.WithDescription("The sink's committed offset (the next record not yet in files), per partition."))
	if errs[7] == nil && errs[8] == nil {
		_, errs[9] = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			for _, p := range s.Status().Partitions {
				attrs := metric.WithAttributes(
					attribute.String("group", s.cfg.Group),
					attribute.String("topic", s.cfg.Topic),
					attribute.Int(attrPartition, int(p.Partition)))
				o.ObserveInt64(lag, p.Lag(), attrs)
				if p.Committed >= 0 {
					o.ObserveInt64(committed, p.Committed, attrs)
				}
			}
			return nil
		}, lag, committed)
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("parquet: metrics: %w", err)
		}
	}
	return &ins, nil
}
