package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kappa-stream/kappa/catalog"
	"github.com/kappa-stream/kappa/replay"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/sinks/parquet"
)

// sinkConfig is the operator configuration of the Parquet sink.
type sinkConfig struct {
	dir   string
	epoch time.Duration
	rows  int
}

// sinkFlags declares the Parquet sink's flags.
func sinkFlags(fs *flag.FlagSet, c *sinkConfig) {
	fs.StringVar(&c.dir, "sink-dir", "", "write the valid listens, exactly once, as Parquet files under this folder (listens/day=…/, catalog/) for DuckDB, Spark or Trino (empty: no sink)")
	fs.DurationVar(&c.epoch, "sink-epoch", parquet.DefaultEpochInterval, "with --sink-dir, the longest an epoch reads before its files are written: one file per partition and day per epoch")
	fs.IntVar(&c.rows, "sink-epoch-rows", parquet.DefaultEpochRows, "with --sink-dir, the most listens of one epoch (they are held in memory, about 150 bytes each)")
}

// check validates the sink flags.
func (c sinkConfig) check() error {
	if c.epoch <= 0 {
		return fmt.Errorf("--sink-epoch %s: want more than 0", c.epoch)
	}
	if c.rows < 1 {
		return fmt.Errorf("--sink-epoch-rows %d: want 1 or more", c.rows)
	}
	return nil
}

// newSink is the instance's Parquet sink, or nil without --sink-dir.
func newSink(c instanceConfig, tel *telemetry, logger *slog.Logger) (*parquet.Sink, error) {
	if c.sink.dir == "" {
		return nil, nil
	}
	return parquet.New(parquet.Config{
		Brokers:            c.brokers,
		Dir:                c.sink.dir,
		InstanceID:         c.instanceID,
		CatalogTopic:       catalog.TableTopic,
		EpochRows:          c.sink.rows,
		EpochInterval:      c.sink.epoch,
		SessionTimeout:     c.sessionTimeout,
		TransactionTimeout: c.transactionTimeout,
		Logger:             logger,
		MeterProvider:      tel.provider,
		ClientOpts:         append(c.sec.Opts(), tel.kafkaHooks()),
	})
}

// instanceStatus is the body of /v1/status: the versions' status and,
// with --sink-dir, the sink's progress.
type instanceStatus struct {
	serve.Status
	Sink *parquet.Status `json:"sink,omitempty"`
}

// statusWithSink reports the versions' status and the sink's (nil: none).
func statusWithSink(rt *replay.Runtime, sink *parquet.Sink) func() any {
	return func() any {
		st := instanceStatus{Status: rt.Status()}
		if sink != nil {
			s := sink.Status()
			st.Sink = &s
		}
		return st
	}
}

// printSinkLag prints the Parquet sink group's lag per partition, or that
// no sink has run.
func printSinkLag(ctx context.Context, w io.Writer, adm *kadm.Client) error {
	lags, err := adm.Lag(ctx, parquet.DefaultGroup)
	if err != nil {
		return fmt.Errorf("group %s: %w", parquet.DefaultGroup, err)
	}
	if l, ok := lags[parquet.DefaultGroup]; !ok || l.State == "Dead" {
		fmt.Fprintf(w, "parquet sink: group %s not found (no instance has run with --sink-dir)\n\n", parquet.DefaultGroup)
		return nil
	}
	return printGroupLag(ctx, w, adm, parquet.DefaultGroup)
}
