package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/catalog"
	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/replay"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/topology"
)

// partitionCheckRecords is how many of the newest records per partition
// status reads to check the producers' partitioning.
const partitionCheckRecords = 100

func runStatus(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "Shows the topics, every version of the topology (its lag, readiness, and which\n"+
		"one serves), the consumer groups of the running versions with their lag per\n"+
		"partition, the state store sizes, and warns when recent records of listens sit\n"+
		"in a partition their key does not hash to (murmur2, as the Java client).", stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	data := fs.String("data", "./kappa-data", "data directory of the local instance (for store sizes)")
	version := fs.String("version", "", "show the groups and stores of this version only (default: every running version)")
	controlTopic := fs.String("control-topic", topicControl, "the control topic of the kappa deployment")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP address of an instance to ask for its partitions and restores (empty: skip)")
	secFlags := securityFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sec, err := loadSecurity(fs, secFlags)
	if err != nil {
		return err
	}
	bs := splitBrokers(*brokers)
	if len(bs) == 0 {
		return usageErrorf(fs, "--brokers is empty")
	}
	if *version != "" && !control.ValidName(*version) {
		return usageErrorf(fs, "--version %q: want v1, v2, …", *version)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bs...)}, sec.Opts()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	st, err := replay.LoadControl(ctx, adm, bs, *controlTopic, sec.Opts()...)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "brokers %s\n\n", *brokers)
	topics := []string{topicListens, topicDLQ, catalog.FeedTopic, catalog.RejectsTopic}
	var shown []control.Version
	for _, v := range st.Active() {
		if *version == "" || v.Name == *version {
			shown = append(shown, v)
			topics = append(topics, replay.NamesOf(*data, v).Deltas)
		}
	}
	if *version != "" && len(shown) == 0 {
		shown = append(shown, control.Version{Name: *version})
	}
	if err := printTopics(ctx, stdout, adm, topics...); err != nil {
		return err
	}
	if err := printVersions(ctx, stdout, adm, st, *controlTopic); err != nil {
		return err
	}
	for _, v := range shown {
		n := replay.NamesOf(*data, v)
		for _, group := range []string{n.UsersGroup, n.AggregatesGroup} {
			if err := printGroupLag(ctx, stdout, adm, group); err != nil {
				return err
			}
		}
	}
	if err := printGroupLag(ctx, stdout, adm, string(catalog.Group)); err != nil {
		return err
	}
	if err := printSinkLag(ctx, stdout, adm); err != nil {
		return err
	}
	if *httpAddr != "" {
		printInstance(ctx, stdout, *httpAddr)
	}
	for _, v := range shown {
		n := replay.NamesOf(*data, v)
		printStores(stdout, n.AggregatesDir)
		if _, err := os.Stat(n.UsersDir); err == nil {
			// NB: stage 1 keeps stores only with --fan-zones or --similar.
			printStores(stdout, n.UsersDir)
		}
	}
	return checkPartitioning(ctx, stdout, bs, sec.Opts(), adm)
}

// printVersions prints every version with its state, its lag and whether
// it is ready (replay.ReadyLag) and serving.
func printVersions(ctx context.Context, w io.Writer, adm *kadm.Client, st control.State, topic string) error {
	if len(st.Versions) == 0 {
		fmt.Fprintf(w, "versions: none yet (%s is empty: no instance has run)\n\n", topic)
		return nil
	}
	fmt.Fprintf(w, "versions (%s), serving %s since %s\n", topic, st.Serving.Version, st.Serving.Since.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "version\tstate\tfrom\tlag listens\tlag deltas\tready\tserving\tconfig")
	for _, v := range st.Sorted() {
		state, lag1, lag2, ready := "", "-", "-", "-"
		if !v.Active() {
			state = "retired " + v.Retired.Format(time.RFC3339)
		} else {
			state = "running"
			p, err := replay.ProgressOf(ctx, adm, replay.NamesOf("", v), topicListens)
			if err != nil {
				return err
			}
			lag1, lag2 = strconv.FormatInt(p.ListensLag, 10), strconv.FormatInt(p.DeltasLag, 10)
			ready = "no"
			if p.Ready(replay.ReadyLag) {
				ready = "yes"
			}
		}
		serving := ""
		if v.Name == st.Serving.Version {
			serving = "serving"
		}
		from := v.From
		if v.Forced {
			from += " (forced)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, state, from, lag1, lag2, ready, serving, v.Config)
	}
	tw.Flush()
	fmt.Fprintln(w)
	return nil
}

// printTopics prints the partitions and the number of offsets (records,
// and markers of transactions) of topics.
func printTopics(ctx context.Context, w io.Writer, adm *kadm.Client, topics ...string) error {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	for _, t := range topics {
		var records int64
		parts := 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic != t || o.Err != nil {
				return
			}
			parts++
			s, _ := starts.Lookup(t, o.Partition)
			records += o.Offset - s.Offset
		})
		if parts == 0 {
			fmt.Fprintf(w, "topic %-22s missing\n", t)
			continue
		}
		fmt.Fprintf(w, "topic %-22s %3d partitions %12d offsets\n", t, parts, records)
	}
	fmt.Fprintln(w)
	return nil
}

func printGroupLag(ctx context.Context, w io.Writer, adm *kadm.Client, group string) error {
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	l, ok := lags[group]
	if !ok || l.State == "Dead" {
		fmt.Fprintf(w, "group %s: not found (nothing has run this version yet)\n\n", group)
		return nil
	}
	if l.Error() != nil {
		return fmt.Errorf("group %s: %w", group, l.Error())
	}
	fmt.Fprintf(w, "group %s: %s, %d member(s)\n", group, l.State, len(l.Members))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\tpartition\tcommitted\tend\tlag\tmember\t")
	var total int64
	for _, ml := range l.Lag.Sorted() {
		member := "-"
		if ml.Member != nil {
			member = ml.Member.ClientID
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\n", ml.Topic, ml.Partition, ml.Commit.At, ml.End.Offset, ml.Lag, member)
		total += ml.Lag
	}
	tw.Flush()
	fmt.Fprintf(w, "total lag %d\n\n", total)
	return nil
}

// printInstance prints what the instance at addr says of its partitions:
// which it owns per stage, their lag, and the restores in progress.
func printInstance(ctx context.Context, w io.Writer, addr string) {
	st, err := replay.FetchStatus(ctx, "http://"+addr)
	if err != nil {
		fmt.Fprintf(w, "instance at %s: no status (%v)\n\n", addr, err)
		return
	}
	fmt.Fprintf(w, "instance %s (%s, serving %s)\n", st.Instance, st.HTTP, st.Serving)
	for _, vs := range st.Versions {
		fmt.Fprintf(w, "  version %s\n", vs.Version)
		if f := vs.Failed; f != nil {
			fmt.Fprintf(w, "    FAILED at %s (%d in a row), starts again at %s: %s\n", f.At.Format(time.RFC3339), f.Failures, f.RetryAt.Format(time.RFC3339), f.Error)
		}
		printStages(w, vs.Stages)
		printPending(w, vs)
	}
	fmt.Fprintln(w)
}

// printPending prints the users of a version waiting to be published
// (--fan-delay, --similar-delay), when it has fan zones or similar users.
func printPending(w io.Writer, vs serve.VersionStatus) {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(vs.Pending)) {
		parts = append(parts, fmt.Sprintf("%d users of %s", vs.Pending[name], name))
	}
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(w, "    pending publication: %s", strings.Join(parts, ", "))
	if vs.PendingAgeMS > 0 {
		fmt.Fprintf(w, ", the oldest for %s", (time.Duration(vs.PendingAgeMS) * time.Millisecond).String())
	}
	fmt.Fprintln(w)
}

// printStages prints an instance's partitions of each stage.
func printStages(w io.Writer, stages []serve.StageStatus) {
	for _, sg := range stages {
		var owned, restoring []string
		var lag int64
		for _, p := range sg.Partitions {
			owned = append(owned, strconv.Itoa(int(p.Partition)))
			lag += p.Lag()
			if p.Restoring {
				restoring = append(restoring, fmt.Sprintf("p%d %d/%d", p.Partition, p.RestoreDone, p.RestoreTotal))
			}
		}
		fmt.Fprintf(w, "    %s: partitions [%s], lag %d", sg.Group, strings.Join(owned, " "), lag)
		if len(restoring) > 0 {
			fmt.Fprintf(w, ", restoring %s", strings.Join(restoring, ", "))
		}
		fmt.Fprintln(w)
	}
}

func printStores(w io.Writer, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(w, "stores in %s: none (%s)\n\n", dir, err)
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var size int64
		_ = filepath.WalkDir(filepath.Join(dir, e.Name()), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					size += info.Size()
				}
			}
			return nil
		})
		fmt.Fprintf(w, "store %-10s %10.1f MiB  %s\n", e.Name(), float64(size)/(1<<20), filepath.Join(dir, e.Name()))
	}
	fmt.Fprintln(w)
}

// checkPartitioning reads the newest records of every listens partition
// and warns about keyed records that are not where murmur2 puts them.
func checkPartitioning(ctx context.Context, w io.Writer, brokers []string, sec []kgo.Opt, adm *kadm.Client) error {
	starts, err := adm.ListStartOffsets(ctx, topicListens)
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topicListens)
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	from := map[string]map[int32]kgo.Offset{topicListens: {}}
	var want int64
	var partitions int
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		partitions++
		s, _ := starts.Lookup(topicListens, o.Partition)
		at := max(s.Offset, o.Offset-partitionCheckRecords)
		if at < o.Offset {
			from[topicListens][o.Partition] = kgo.NewOffset().At(at)
			want += o.Offset - at
		}
	})
	if want == 0 {
		fmt.Fprintln(w, "partitioning: no records to check")
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(from)}, sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var seen, keyed, misplaced int64
	var examples []string
	for seen < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			if r.Key == nil {
				return
			}
			keyed++
			if p := topology.KeyPartition(r.Key, partitions); p != r.Partition {
				misplaced++
				if len(examples) < 3 {
					examples = append(examples, fmt.Sprintf("key %q at partition %d offset %d, murmur2 says %d", r.Key, r.Partition, r.Offset, p))
				}
			}
		})
	}
	slices.Sort(examples)
	if misplaced == 0 {
		fmt.Fprintf(w, "partitioning: %d recent keyed records all sit where murmur2(key) puts them\n", keyed)
		return nil
	}
	fmt.Fprintf(w, "WARNING partitioning: %d of %d recent keyed records are not in the partition murmur2(key) gives;\n"+
		"  per-user state is only correct when every producer partitions by murmur2 of user_id\n"+
		"  (Java client and franz-go default; librdkafka/kcat: partitioner=murmur2_random). Examples:\n", misplaced, keyed)
	for _, e := range examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	return nil
}
