package topology

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/state"
)

// BenchmarkRestore measures how fast a runner rebuilds empty stores from
// their changelogs: 1,000,000 records of 16-byte keys and values over 4
// partitions, as many as a stage-2 store of a few hundred thousand songs
// holds, from an in-process broker. It reports changelog records/s from
// the assignment to every partition restored.
func BenchmarkRestore(b *testing.B) {
	const records, partitions = 1_000_000, 4
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "in", "cl"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000))
	if err != nil {
		b.Fatal(err)
	}
	for i := range records {
		k := binary.BigEndian.AppendUint64(make([]byte, 8, 16), uint64(i))
		v := state.AppendCounters(nil, int64(i), 1)
		prod.Produce(context.Background(), &kgo.Record{Topic: "cl", Partition: int32(i % partitions), Key: k, Value: v}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	prod.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := New(Config{
			Brokers: c.ListenAddrs(), Group: fmt.Sprintf("restore-%d", i),
			InstanceID: "i", Topic: "in", Changelog: "cl", StoreDir: b.TempDir(),
			NewTask: func(int32, *state.Store) (Task, error) { return &countTask{pending: map[string]int64{}}, nil },
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- r.Run(ctx) }()
		for {
			st := r.Status()
			restored := len(st) == partitions
			for _, s := range st {
				restored = restored && !s.Restoring
			}
			if restored {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		var total int64
		for _, s := range r.Status() {
			total += s.RestoreTotal
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if total != records {
			b.Fatalf("restored %d records, want %d", total, records)
		}
		b.ReportMetric(records/elapsed.Seconds(), "restore-records/s")
	}
}
