package e2e

// Peer benchmarks: the job of BenchmarkEndToEnd's backlog phase — plays and
// streams per (song, UTC day, country) and per (artist, UTC day, country)
// over the same 2,000,000 generated events — written without kappa's
// runtime, once with goka and once with plain franz-go, against the same
// broker set-up: a `kappa up` process whose embedded broker holds the log
// (its own processors have caught up and sit idle), the peer in this
// process. Each reports events/s from its start until its consumer group
// has committed the whole log, the peak RSS of this process over the run
// (the peak is reset before the peer starts; the broker is in the other
// process) and the CPU time this process used in it (cpu-s: on a shared
// machine, steadier than events/s). Each then checks every count it holds against the
// independent model of expect_test.go and fails if one differs.
//
// Both peers decode with kappa's events.Decoder, which validates exactly as
// CONTRACT.md says, so that the figures compare runtimes, not JSON
// decoders (encoding/json would cap either peer near 0.45M events/s per
// core; see docs/benchmarks.md). Invalid records are counted and skipped;
// kappa also writes them to listens.dlq, which the peers do not.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/state"
)

// peerEvents is the size of the peers' input, BenchmarkEndToEnd's.
const peerEvents = benchEvents

// peerConfig is BenchmarkEndToEnd's input.
var peerConfig = generate.Config{Seed: 7, Events: peerEvents, MalformedRate: 0.005, LiveDrop: true}

// peerTimeout bounds one peer run.
const peerTimeout = 15 * time.Minute

// Tags of the two aggregates in peer keys.
const (
	tagSong   byte = 's'
	tagArtist byte = 'a'
)

// peerCell is one counter of a peer: an id of the tag's kind, a UTC day
// (days since 1970-01-01) and a country (zero when absent).
type peerCell struct {
	tag     byte
	id      int64
	day     int32
	country events.Country
}

// key is the cell as a goka key: 15 bytes, tag | id | day | country.
func (c peerCell) key() string {
	var b [15]byte
	b[0] = c.tag
	binary.BigEndian.PutUint64(b[1:], uint64(c.id))
	binary.BigEndian.PutUint32(b[9:], uint32(c.day))
	b[13], b[14] = c.country[0], c.country[1]
	return string(b[:])
}

func cellOfKey(k []byte) (peerCell, error) {
	if len(k) != 15 {
		return peerCell{}, fmt.Errorf("key %x has %d bytes, want 15", k, len(k))
	}
	return peerCell{tag: k[0], id: int64(binary.BigEndian.Uint64(k[1:])),
		day: int32(binary.BigEndian.Uint32(k[9:])), country: events.Country{k[13], k[14]}}, nil
}

func delta(l *events.Listen) counts {
	d := counts{Plays: 1}
	if l.IsStream() {
		d.Streams = 1
	}
	return d
}

// setUpPeerBroker starts `kappa up` with its embedded broker, produces the
// benchmark's events and waits until kappa's own group has consumed them,
// so that its processors are idle when the peer runs: BenchmarkEndToEnd's
// backlog set-up. It returns the broker's address.
func setUpPeerBroker(b *testing.B) string {
	b.Helper()
	kafka, httpAddr := freeAddr(b), freeAddr(b)
	startKappa(b, "peer-up.log", "up", "--data", b.TempDir(), "--kafka-addr", kafka, "--http", httpAddr)
	waitReady(b, httpAddr)
	produceGenerated(b, kafka, peerConfig)
	waitCaughtUp(b, kafka, peerEvents, 5*time.Minute)
	return kafka
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS returns freed heap to the OS and resets this process's peak
// RSS (VmHWM) to its current RSS, so that peakRSS measures what follows,
// and logs that RSS: what an earlier benchmark in the same process left
// counts in the peak.
func resetPeakRSS(b *testing.B) {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
	b.Logf("RSS before the peer starts: %.0f MiB", float64(peakRSS(b, os.Getpid()))/(1<<20))
}

// waitPeerCaughtUp waits until group has committed all of the benchmark's
// records of listens and then every record of each of the topics after
// (those the group writes to itself, whose end is final once every input
// record is committed). It fails if the peer stops first (sends on stopped).
func waitPeerCaughtUp(b *testing.B, brokers, group string, stopped <-chan error, after ...string) {
	b.Helper()
	adm := newAdmin(b, brokers)
	waitFor(b, peerTimeout, "lag 0 on "+group, func() (bool, string) {
		select {
		case err := <-stopped:
			b.Fatalf("peer stopped before it consumed everything: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		committed, end, lagging, err := groupProgress(ctx, adm, group, "listens")
		if err != nil {
			return false, err.Error()
		}
		if end != peerEvents || committed != end {
			return false, fmt.Sprintf("listens: committed %d of %d; lagging:%s", committed, end, lagging)
		}
		for _, topic := range after {
			committed, end, lagging, err := groupProgress(ctx, adm, group, topic)
			if err != nil {
				return false, err.Error()
			}
			if committed != end {
				return false, fmt.Sprintf("%s: committed %d of %d; lagging:%s", topic, committed, end, lagging)
			}
		}
		return true, ""
	})
}

// checkPeer compares a peer's counters with the model of the benchmark's
// events: every cell of every song and artist, no cell more, and the
// number of invalid records.
func checkPeer(b *testing.B, got map[peerCell]counts, invalid int64) {
	b.Helper()
	g, err := generate.New(peerConfig)
	if err != nil {
		b.Fatal(err)
	}
	m := newModel()
	malformed := 0
	for range peerConfig.Events {
		line, bad := g.Next(nil)
		if bad {
			malformed++
			continue
		}
		if err := m.add(line); err != nil {
			b.Fatal(err)
		}
	}
	if invalid != int64(malformed) {
		b.Errorf("peer skipped %d invalid records, the generator broke %d", invalid, malformed)
	}
	var failures []string
	want := 0
	check := func(tag byte, ids map[int64]map[cell]counts) {
		for id, cells := range ids {
			for c, n := range cells {
				want++
				t, err := time.Parse(time.DateOnly, c.Day)
				if err != nil {
					b.Fatal(err)
				}
				pc := peerCell{tag: tag, id: id, day: int32(t.Unix() / 86400)}
				copy(pc.country[:], c.Country)
				if have := got[pc]; have != n && len(failures) < 10 {
					failures = append(failures, fmt.Sprintf("%c %d %s %q: got %d/%d, want %d/%d",
						tag, id, c.Day, c.Country, have.Plays, have.Streams, n.Plays, n.Streams))
				}
			}
		}
	}
	check(tagSong, m.songs)
	check(tagArtist, m.artists)
	if len(got) != want {
		failures = append(failures, fmt.Sprintf("peer holds %d cells, the model %d", len(got), want))
	}
	if len(failures) > 0 {
		b.Fatalf("peer's counts differ from the raw events (first 10):\n%s", strings.Join(failures, "\n"))
	}
	b.Logf("checked %d cells (%d songs, %d artists) and %d invalid records: all exact",
		want, len(m.songs), len(m.artists), malformed)
}

// BenchmarkPeerGoka runs the job as a goka v1.1.17 processor group on the
// Pebble storage adapter (state.GokaBuilder).
//
// Design. A goka group table is keyed by the key of the message being
// processed, and the input is keyed by user, so the counters, keyed by
// (song, day, country) and (artist, day, country), need a repartition. The
// cheapest one goka offers is its loopback: one group, one table, no second
// processor. The input callback decodes and validates the listen and emits
// two loopback messages, keyed by the song cell and the artist cell, with
// the delta (1 play, 0 or 1 stream); the loop callback adds the delta to the
// cell's value in the group table (goka.Persist). Per valid listen that is
// 2 loopback records, 2 table reads, 2 table writes with their 2 changelog
// records and 2 offset writes. Goka offers no pre-aggregation across
// messages: a callback's emits are tied to its own message's commit, so
// summing deltas in memory across messages and emitting them later would
// commit input offsets whose counts were not yet emitted, losing them on a
// crash; and nothing lets a callback fire on a timer. Keys are 15 binary
// bytes and values 16 (two int64), the smallest honest encodings. The
// table's storage is state.GokaBuilder's Pebble, whose settings were tuned
// on this benchmark (see state.NewGokaStorage). Goka is CPU-bound here: its
// process uses ~1.8 of the 2 cores, the broker ~0.1; a third of goka's CPU
// is the table's Get and Set, most of the rest sarama and goka's per-message
// promises, channels and allocations.
//
// Configuration (goka's defaults are for a production cluster):
//   - replication factor 1 for the loop and table topics: there is one
//     broker;
//   - Consumer.Offsets.Initial = OffsetOldest: goka's default is
//     OffsetNewest for a new group's input streams, which would skip the log;
//   - Consumer.Fetch.Default 2 MiB per partition request, as kappa's
//     FetchMaxPartitionBytes (sarama's default is 1 MiB);
//   - producer: no compression (goka defaults to snappy, which costs CPU on
//     a local broker for no gain), batches flushed at 1 MiB (goka: 64 KiB)
//     or every 100 ms (goka's default; 10 ms cost ~10% more CPU);
//   - ChannelBufferSize and goka's partition channel at 4096 messages so
//     that the partition goroutines do not wait on sarama;
//   - offsets auto-committed every 100 ms, as kappa flushes, so that
//     "everything committed" shows as soon (sarama's default of 1 s would
//     add up to a second to the measured time);
//   - sarama's protocol version is goka's default, V2_0_0_0: sarama talks
//     to the embedded kfake broker (topic creation, classic consumer group
//     with goka's copartitioning balancer, offset commits) with no
//     workaround, and V2_1_0_0 ran no faster.
func BenchmarkPeerGoka(b *testing.B) {
	for range b.N {
		b.StopTimer()
		kafka := setUpPeerBroker(b)
		dir := b.TempDir()
		logPath := filepath.Join(b.TempDir(), "goka.log")
		logf, err := os.Create(logPath)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			logf.Close()
			if b.Failed() {
				b.Logf("goka's log:\n%s", tail(logPath, 60))
			}
		})
		resetPeakRSS(b)

		var (
			invalid  atomic.Int64
			decoders = sync.Pool{New: func() any { return new(events.Decoder) }}
			stMu     sync.Mutex
			stores   []storage.Storage
		)
		build := state.GokaBuilder(dir)
		group := goka.Group("peer.goka")
		gg := goka.DefineGroup(group,
			goka.Input("listens", new(codec.Bytes), func(ctx goka.Context, msg any) {
				d := decoders.Get().(*events.Decoder)
				var l events.Listen
				err := d.Decode(msg.([]byte), &l)
				decoders.Put(d)
				if err != nil {
					invalid.Add(1)
					return
				}
				day := l.Day()
				ctx.Loopback(peerCell{tagSong, l.SongID, day, l.Country}.key(), delta(&l))
				ctx.Loopback(peerCell{tagArtist, l.ArtistID, day, l.Country}.key(), delta(&l))
			}),
			goka.Loop(countsCodec{}, func(ctx goka.Context, msg any) {
				c, _ := ctx.Value().(counts)
				d := msg.(counts)
				c.Plays += d.Plays
				c.Streams += d.Streams
				ctx.SetValue(c)
			}),
			goka.Persist(countsCodec{}),
		)
		tmc := goka.NewTopicManagerConfig()
		tmc.Table.Replication = 1
		tmc.Stream.Replication = 1

		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime(b)
		proc, err := goka.NewProcessor([]string{kafka}, gg,
			goka.WithStorageBuilder(func(topic string, partition int32) (storage.Storage, error) {
				st, err := build(topic, partition)
				if err == nil {
					stMu.Lock()
					stores = append(stores, st)
					stMu.Unlock()
				}
				return st, err
			}),
			goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(gokaSaramaConfig(), tmc)),
			goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(gokaSaramaConfig())),
			goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(gokaSaramaConfig())),
			goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(gokaSaramaConfig())),
			goka.WithPartitionChannelSize(4096),
			goka.WithLogger(log.New(logf, "", log.LstdFlags)),
		)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		failed := make(chan error, 1)
		go func() { failed <- proc.Run(ctx) }()
		waitPeerCaughtUp(b, kafka, string(group), failed, gg.LoopStream().Topic())
		elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
		b.StopTimer()
		rss := peakRSS(b, os.Getpid())

		// Read the table back: every partition's storage in full, and a
		// sample through goka's own read path.
		got := map[peerCell]counts{}
		stMu.Lock()
		for _, st := range stores {
			it, err := st.Iterator()
			if err != nil {
				b.Fatal(err)
			}
			for it.Next() {
				c, err := cellOfKey(it.Key())
				if err != nil {
					b.Fatal(err)
				}
				v, err := it.Value()
				if err != nil {
					b.Fatal(err)
				}
				n, err := countsCodec{}.Decode(v)
				if err != nil {
					b.Fatal(err)
				}
				got[c] = n.(counts)
			}
			if err := it.Err(); err != nil {
				b.Fatal(err)
			}
			it.Release()
		}
		stMu.Unlock()
		sampled := 0
		for c, n := range got {
			if sampled == 1000 {
				break
			}
			sampled++
			v, err := proc.Get(c.key())
			if err != nil {
				b.Fatal(err)
			}
			if v != n {
				b.Fatalf("processor.Get(%v) = %v, the storage holds %v", c, v, n)
			}
		}
		cancel()
		if err := <-failed; err != nil && !errors.Is(err, context.Canceled) {
			b.Errorf("processor: %v", err)
		}
		checkPeer(b, got, invalid.Load())

		b.ReportMetric(peerEvents/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
	}
}

// gokaSaramaConfig is the sarama configuration of the goka peer; see
// BenchmarkPeerGoka. Each goka builder gets its own copy, as the builders
// set fields of the config they are given.
func gokaSaramaConfig() *sarama.Config {
	c := goka.DefaultConfig()
	c.ChannelBufferSize = 4096
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	c.Consumer.Fetch.Default = 2 << 20
	c.Producer.Compression = sarama.CompressionNone
	c.Producer.Flush.Bytes = 1 << 20
	c.Producer.Flush.Frequency = 100 * time.Millisecond
	return c
}

// countsCodec is the goka codec of a counts value: two little-endian int64.
type countsCodec struct{}

func (countsCodec) Encode(v any) ([]byte, error) {
	c, ok := v.(counts)
	if !ok {
		return nil, fmt.Errorf("countsCodec: encode %T", v)
	}
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 16), uint64(c.Plays))
	return binary.LittleEndian.AppendUint64(b, uint64(c.Streams)), nil
}

func (countsCodec) Decode(b []byte) (any, error) {
	if len(b) != 16 {
		return nil, fmt.Errorf("countsCodec: %d bytes, want 16", len(b))
	}
	return counts{int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))}, nil
}

// BenchmarkPeerFranz runs the job as a plain franz-go consumer group: what a
// competent engineer writes without a framework. The poll loop hands each
// fetched partition to one of GOMAXPROCS workers (partition modulo the
// number of workers), each with its own decoder and its own two Go maps,
// and waits for them before it polls again; a cell's count is the sum over
// the workers' maps. franz-go's autocommit commits, every 100 ms, the
// offsets of what earlier polls returned, so a record's offset is committed
// only after it was counted (at least once). Fetch sizes are franz-go's
// defaults (kappa's 16 MiB per fetch and 2 MiB per partition were no faster
// here). The state lives only in memory:
// a restart would count from the committed offsets on empty maps, which
// kappa's stores do not allow; this is the runtime's upper bound without
// durable state.
func BenchmarkPeerFranz(b *testing.B) {
	for range b.N {
		b.StopTimer()
		kafka := setUpPeerBroker(b)
		resetPeakRSS(b)

		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime(b)
		const group = "peer.franz"
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(kafka),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics("listens"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(100*time.Millisecond),
		)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		workers := make([]*franzWorker, runtime.GOMAXPROCS(0))
		var wg sync.WaitGroup
		for i := range workers {
			w := &franzWorker{in: make(chan kgo.FetchTopicPartition), got: map[peerCell]counts{}}
			workers[i] = w
			go w.run(&wg)
		}
		done := make(chan error, 1)
		go func() {
			defer func() {
				for _, w := range workers {
					close(w.in)
				}
			}()
			for {
				fetches := cl.PollRecords(ctx, 10_000)
				if ctx.Err() != nil || fetches.IsClientClosed() {
					done <- nil
					return
				}
				if err := fetches.Err(); err != nil {
					done <- err
					return
				}
				fetches.EachPartition(func(p kgo.FetchTopicPartition) {
					wg.Add(1)
					workers[int(p.Partition)%len(workers)].in <- p
				})
				wg.Wait()
			}
		}()
		waitPeerCaughtUp(b, kafka, group, done)
		elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
		b.StopTimer()
		rss := peakRSS(b, os.Getpid())
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cl.Close()
		got := map[peerCell]counts{}
		var invalid int64
		for _, w := range workers {
			for c, n := range w.got {
				t := got[c]
				t.Plays += n.Plays
				t.Streams += n.Streams
				got[c] = t
			}
			invalid += w.invalid
		}
		checkPeer(b, got, invalid)

		b.ReportMetric(peerEvents/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
	}
}

// franzWorker counts the partitions the poll loop hands it.
type franzWorker struct {
	in      chan kgo.FetchTopicPartition
	dec     events.Decoder
	got     map[peerCell]counts
	invalid int64
}

func (w *franzWorker) run(wg *sync.WaitGroup) {
	var l events.Listen
	for p := range w.in {
		for _, r := range p.Records {
			if err := w.dec.Decode(r.Value, &l); err != nil {
				w.invalid++
				continue
			}
			day, d := l.Day(), delta(&l)
			w.add(peerCell{tagSong, l.SongID, day, l.Country}, d)
			w.add(peerCell{tagArtist, l.ArtistID, day, l.Country}, d)
		}
		wg.Done()
	}
}

func (w *franzWorker) add(c peerCell, d counts) {
	n := w.got[c]
	n.Plays += d.Plays
	n.Streams += d.Streams
	w.got[c] = n
}
