package state

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// WithMeterProvider exports the store's Pebble metrics (disk usage,
// memtable size, read amplification) as observable gauges, with the store
// directory as attribute "store". Default: none.
func WithMeterProvider(mp metric.MeterProvider) Opt {
	return opt(func(c *cfg) { c.meterProvider = mp })
}

func (s *Store) instrument(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter("github.com/kappa-stream/kappa/state")
	disk, err1 := m.Int64ObservableGauge("kappa.store.size", metric.WithUnit("By"),
		metric.WithDescription("Bytes the store occupies on disk."))
	mem, err2 := m.Int64ObservableGauge("kappa.store.memtable.size", metric.WithUnit("By"),
		metric.WithDescription("Bytes held in the store's memtables."))
	amp, err3 := m.Int64ObservableGauge("kappa.store.read_amplification",
		metric.WithDescription("Sorted runs a point read may visit."))
	hits, err4 := m.Int64ObservableCounter("kappa.store.block_cache.hits",
		metric.WithDescription("Block reads served by the block cache the store uses; a cache shared by several stores shows the same figure under each."))
	misses, err5 := m.Int64ObservableCounter("kappa.store.block_cache.misses",
		metric.WithDescription("Block reads that missed the block cache the store uses and read the file; a cache shared by several stores shows the same figure under each."))
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return nil, fmt.Errorf("state: metrics: %w", err)
		}
	}
	attrs := metric.WithAttributes(attribute.String("store", s.dir))
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		pm := s.db.Metrics()
		o.ObserveInt64(disk, int64(pm.DiskSpaceUsage()), attrs)
		o.ObserveInt64(mem, int64(pm.MemTable.Size), attrs)
		o.ObserveInt64(amp, int64(pm.ReadAmp()), attrs)
		o.ObserveInt64(hits, pm.BlockCache.Hits, attrs)
		o.ObserveInt64(misses, pm.BlockCache.Misses, attrs)
		return nil
	}, disk, mem, amp, hits, misses)
	if err != nil {
		return nil, fmt.Errorf("state: metrics: %w", err)
	}
	return reg, nil
}
