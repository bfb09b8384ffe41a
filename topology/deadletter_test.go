package topology

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/state"
)

// TestHugeRejectedRecordIsDeadLettered sends records of up to the
// broker's 1 MiB limit that the task rejects, with a huge reason: their
// dead letters must fit in the transaction (whole, or cut with the
// original's size and hash), and the partition must go on to count the
// records after them. Without the cut the transaction fails with
// MessageTooLarge, aborts and repeats forever.
func TestHugeRejectedRecordIsDeadLettered(t *testing.T) {
	c, _ := newCluster(t, 1, "in", "in.dlq", "mid", "mid.changelog")
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(1048588),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	huge := append([]byte("bad"), bytes.Repeat([]byte{'x'}, 1048000)...)
	small := []byte("bad small")
	recs := []*kgo.Record{
		{Topic: "in", Key: []byte("k0"), Value: []byte("1")},
		{Topic: "in", Key: []byte("k1"), Value: huge},
		{Topic: "in", Key: []byte("k2"), Value: small},
		{Topic: "in", Key: []byte("k3"), Value: []byte("2")},
	}
	for _, r := range recs {
		if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	first, err := New(Config{
		Brokers: c.ListenAddrs(), Group: "first", InstanceID: "i1", Topic: "in", DLQTopic: "in.dlq",
		CommitInterval: 20 * time.Millisecond,
		NewTask:        func(int32, *state.Store) (Task, error) { return &prefixRejectTask{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	waitUntil(t, "both dead letters", func() bool { return len(readAll(t, c.ListenAddrs(), "in.dlq")) >= 2 })
	waitUntil(t, "the records after them forwarded", func() bool { return len(readAll(t, c.ListenAddrs(), "mid")) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	dead := readAll(t, c.ListenAddrs(), "in.dlq")
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	sum := sha256.Sum256(huge)
	for _, d := range dead {
		hs := map[string]string{}
		for _, h := range d.Headers {
			hs[h.Key] = string(h.Value)
		}
		switch string(d.Key) {
		case "k1":
			if len(d.Value) != DeadLetterMaxValue || !bytes.Equal(d.Value, huge[:DeadLetterMaxValue]) {
				t.Errorf("huge dead letter: %d bytes, want its first %d", len(d.Value), DeadLetterMaxValue)
			}
			if hs[HeaderTruncated] != strconv.Itoa(len(huge)) || hs[HeaderSHA256] != hex.EncodeToString(sum[:]) ||
				hs[HeaderSource] != "in/0/1" || len(hs[HeaderError]) != DeadLetterMaxReason {
				t.Errorf("huge dead letter's headers: size %q hash %q source %q reason of %d bytes",
					hs[HeaderTruncated], hs[HeaderSHA256], hs[HeaderSource], len(hs[HeaderError]))
			}
		case "k2":
			_, cut := hs[HeaderTruncated]
			if !bytes.Equal(d.Value, small) || cut || hs[HeaderSource] != "in/0/2" {
				t.Errorf("small dead letter %q with headers %v", d.Value, hs)
			}
		default:
			t.Errorf("dead letter of key %q", d.Key)
		}
	}
}

// prefixRejectTask forwards values to "mid" and rejects those that start
// with "bad", with a reason longer than a dead letter keeps.
type prefixRejectTask struct{ forwardTask }

func (t *prefixRejectTask) Process(rec *kgo.Record) error {
	if bytes.HasPrefix(rec.Value, []byte("bad")) {
		return errors.New(strings.Repeat("reason ", 100_000))
	}
	return t.forwardTask.Process(rec)
}

func TestDeadLetterLimits(t *testing.T) {
	rec := &kgo.Record{Topic: "t", Partition: 2, Offset: 9, Key: bytes.Repeat([]byte{1}, DeadLetterMaxKey+1),
		Value: bytes.Repeat([]byte{2}, DeadLetterMaxValue+1)}
	dl := deadLetter("dlq", rec, errors.New("why"))
	size := len(dl.Key) + len(dl.Value)
	for _, h := range dl.Headers {
		size += len(h.Key) + len(h.Value)
	}
	if len(dl.Key) != DeadLetterMaxKey || len(dl.Value) != DeadLetterMaxValue || size > 300<<10 {
		t.Fatalf("dead letter of key %d, value %d, %d bytes in all", len(dl.Key), len(dl.Value), size)
	}
	rec.Value = rec.Value[:DeadLetterMaxValue]
	if dl := deadLetter("dlq", rec, errors.New("why")); len(dl.Headers) != 2 || len(dl.Value) != DeadLetterMaxValue {
		t.Fatalf("a value at the limit was cut: headers %v", dl.Headers)
	}
}
