package topology

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kappa-stream/kappa/state"
)

// failNth makes the cluster answer the nth request of kind key (counting
// from 1) with an error built by respond, once, and pass every other
// request through. It returns how many requests failed.
func failNth(c *kfake.Cluster, key int16, nth int64, respond func(kmsg.Request) kmsg.Response) *atomic.Int64 {
	var seen, failed atomic.Int64
	c.ControlKey(key, func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if seen.Add(1) != nth {
			return nil, nil, false
		}
		failed.Add(1)
		return respond(req), nil, true
	})
	return &failed
}

func failProduce(code int16) func(kmsg.Request) kmsg.Response {
	return func(r kmsg.Request) kmsg.Response {
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
}

func failEndTxn(code int16) func(kmsg.Request) kmsg.Response {
	return func(r kmsg.Request) kmsg.Response {
		resp := r.(*kmsg.EndTxnRequest).ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = code
		return resp
	}
}

func failTxnOffsetCommit(code int16) func(kmsg.Request) kmsg.Response {
	return func(r kmsg.Request) kmsg.Response {
		req := r.(*kmsg.TxnOffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
}

// failListOffsetsOf answers the first ListOffsets request that names
// topic with the error code for every partition, once, and passes every
// other request through. It returns how many requests failed.
func failListOffsetsOf(c *kfake.Cluster, topic string, code int16) *atomic.Int64 {
	var failed atomic.Int64
	c.ControlKey(kmsg.ListOffsets.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.ListOffsetsRequest)
		if failed.Load() > 0 || !slices.ContainsFunc(req.Topics, func(t kmsg.ListOffsetsRequestTopic) bool { return t.Topic == topic }) {
			return nil, nil, false
		}
		failed.Add(1)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return &failed
}

// TestRestoreErrorStartsNewSession fails the changelog's offsets while a
// partition restores, as when the broker is unreachable: the runner must
// start a new session and restore again, not stop.
func TestRestoreErrorStartsNewSession(t *testing.T) {
	c, prod := newCluster(t, 3, "in", "in.dlq", "mid", "mid.changelog")
	const n = 1000
	produce(t, prod, "in", 0, n, nil)
	failed := failListOffsetsOf(c, "mid.changelog", kerr.UnknownServerError.Code)
	p := startPipeline(t, c.ListenAddrs(), filepath.Join(t.TempDir(), "stores"))
	want := map[string]int64{}
	for i := range n {
		want[strconv.Itoa(i%10)]++
	}
	waitCounts(t, p.second, want)
	p.stop(t)
	if failed.Load() != 1 {
		t.Fatalf("%d requests failed, want 1: the fault was not injected", failed.Load())
	}
}

// TestFaultsAreRetriedWithoutDuplicates fails one produce, EndTxn or
// TxnOffsetCommit request in the middle of a run, with retriable and
// fatal errors, and checks that every record is still counted once and
// dead-lettered once.
func TestFaultsAreRetriedWithoutDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     int16
		nth     int64
		respond func(kmsg.Request) kmsg.Response
	}{
		{"produce retriable", kmsg.Produce.Int16(), 1, failProduce(kerr.NotEnoughReplicas.Code)},
		{"produce fails the records", kmsg.Produce.Int16(), 1, failProduce(kerr.MessageTooLarge.Code)},
		{"end txn retriable", kmsg.EndTxn.Int16(), 1, failEndTxn(kerr.CoordinatorLoadInProgress.Code)},
		{"end txn fatal", kmsg.EndTxn.Int16(), 1, failEndTxn(kerr.InvalidTxnState.Code)},
		{"txn offset commit abortable", kmsg.TxnOffsetCommit.Int16(), 1, failTxnOffsetCommit(kerr.IllegalGeneration.Code)},
		{"txn offset commit fatal", kmsg.TxnOffsetCommit.Int16(), 1, failTxnOffsetCommit(kerr.InvalidProducerEpoch.Code)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, prod := newCluster(t, 3, "in", "in.dlq", "mid", "mid.changelog")
			const n = 3000
			bad := map[int]bool{10: true, 1500: true, 2999: true}
			produce(t, prod, "in", 0, n, bad)

			failed := failNth(c, tc.key, tc.nth, tc.respond)
			p := startPipeline(t, c.ListenAddrs(), filepath.Join(t.TempDir(), "stores"))
			want := map[string]int64{}
			for i := range n {
				if !bad[i] {
					want[strconv.Itoa(i%10)]++
				}
			}
			waitCounts(t, p.second, want)
			p.stop(t)
			if failed.Load() != 1 {
				t.Fatalf("%d requests failed, want 1: the fault was not injected", failed.Load())
			}
			dead := readAll(t, c.ListenAddrs(), "in.dlq")
			if len(dead) != len(bad) {
				t.Fatalf("%d committed dead letters, want %d", len(dead), len(bad))
			}
		})
	}
}

// TestRestoreWaitsForASlowFetch restores a lost store while the broker
// answers the restore's first changelog fetch late (as a loaded machine
// does): the restore must wait for the records, not take the silence for
// the changelog's end and serve a store without them.
func TestRestoreWaitsForASlowFetch(t *testing.T) {
	c, prod := newCluster(t, 3, "in", "in.dlq", "mid", "mid.changelog")
	dir := filepath.Join(t.TempDir(), "stores")
	const n = 1000
	produce(t, prod, "in", 0, n, nil)
	want := map[string]int64{}
	for i := range n {
		want[strconv.Itoa(i%10)]++
	}
	p := startPipeline(t, c.ListenAddrs(), dir)
	waitCounts(t, p.second, want)
	p.stop(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	topics, err := kadm.NewClient(prod).ListTopics(t.Context(), "mid.changelog")
	if err != nil {
		t.Fatal(err)
	}
	id := topics["mid.changelog"].ID
	var delayed atomic.Int64
	c.ControlKey(kmsg.Fetch.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.FetchRequest)
		if !slices.ContainsFunc(req.Topics, func(t kmsg.FetchRequestTopic) bool { return t.Topic == "mid.changelog" || t.TopicID == id }) {
			return nil, nil, false
		}
		if delayed.Add(1) <= 3 {
			time.Sleep(1500 * time.Millisecond) // NB: longer than a restore poll
		}
		return nil, nil, false
	})
	p = startPipeline(t, c.ListenAddrs(), dir)
	waitCounts(t, p.second, want)
	p.stop(t)
	if delayed.Load() == 0 {
		t.Fatal("no changelog fetch was delayed: the fault was not injected")
	}
}

// TestOffsetOutOfRangeIsFatal commits an offset past the end of a
// partition, as after the broker lost the records past it: the runner
// must stop with ErrOffsetOutOfRange instead of counting the partition
// again from its start.
func TestOffsetOutOfRangeIsFatal(t *testing.T) {
	c, prod := newCluster(t, 1, "in", "in.dlq", "mid")
	produce(t, prod, "in", 0, 10, nil)
	adm := kadm.NewClient(prod)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "in", Partition: 0, At: 500, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(context.Background(), "first", offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{
		Brokers: c.ListenAddrs(), Group: "first", InstanceID: "i1", Topic: "in", DLQTopic: "in.dlq",
		CommitInterval: 20 * time.Millisecond,
		NewTask:        func(int32, *state.Store) (Task, error) { return &forwardTask{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Run returned %v, want ErrOffsetOutOfRange", err)
	}
	if got := readAll(t, c.ListenAddrs(), "mid"); len(got) != 0 {
		t.Fatalf("%d records forwarded: the partition was counted again from its start", len(got))
	}
}
