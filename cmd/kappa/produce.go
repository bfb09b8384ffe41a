package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
)

func runProduce(ctx context.Context, args []string, stdin io.Reader, _, stderr io.Writer) error {
	fs := newFlagSet("produce", "Reads JSON lines (one listen each) from --file or stdin and produces them to the\n"+
		"listens topic, keyed by user_id (murmur2 partitioning, as the Java client and\n"+
		"franz-go do). Lines that are not valid listens are produced too, unkeyed: the\n"+
		"processors route them to listens.dlq. Progress goes to stderr every second.", stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	file := fs.String("file", "-", "JSON lines to produce; - is stdin")
	topic := fs.String("topic", topicListens, "topic to produce to")
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
	in := stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	cl, err := kgo.NewClient(append(producerOpts(bs, sec.Opts()), kgo.DefaultProduceTopic(*topic))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	p := newProducer(cl, stderr, "produce")
	readErr := p.fromLines(ctx, in)
	return errors.Join(readErr, p.finish(ctx))
}

// producer produces listen lines keyed by user_id and reports progress.
// produce is called from one goroutine; finish waits for every record.
type producer struct {
	cl     *kgo.Client
	stderr io.Writer
	what   string
	start  time.Time
	dec    events.Decoder
	l      events.Listen

	sent     atomic.Int64
	acked    atomic.Int64
	failed   atomic.Int64
	errMu    sync.Mutex
	firstErr error

	stopProgress chan struct{}
	progressDone chan struct{}
}

func newProducer(cl *kgo.Client, stderr io.Writer, what string) *producer {
	p := &producer{
		cl: cl, stderr: stderr, what: what, start: time.Now(),
		stopProgress: make(chan struct{}), progressDone: make(chan struct{}),
	}
	go p.progress()
	return p
}

func (p *producer) progress() {
	defer close(p.progressDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastAt := int64(0), p.start
	for {
		select {
		case <-p.stopProgress:
			return
		case now := <-t.C:
			n := p.acked.Load()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			fmt.Fprintf(p.stderr, "%s: %d records acknowledged (%.0f/s), %d in flight, %d failed\n",
				p.what, n, rate, p.sent.Load()-n-p.failed.Load(), p.failed.Load())
			last, lastAt = n, now
		}
	}
}

// produce sends one line keyed by its user_id, or unkeyed when it is not
// a valid listen; line is copied.
func (p *producer) produce(ctx context.Context, line []byte) {
	var key []byte
	if p.dec.Decode(line, &p.l) == nil {
		key = strconv.AppendInt(nil, p.l.UserID, 10)
	}
	p.produceKeyed(ctx, key, line)
}

// produceKeyed sends one line under key; both are copied.
func (p *producer) produceKeyed(ctx context.Context, key, line []byte) {
	p.sent.Add(1)
	r := &kgo.Record{Value: append([]byte(nil), line...)}
	if key != nil {
		r.Key = append([]byte(nil), key...)
	}
	p.cl.Produce(ctx, r, p.done)
}

func (p *producer) done(_ *kgo.Record, err error) {
	if err == nil {
		p.acked.Add(1)
		return
	}
	p.failed.Add(1)
	p.errMu.Lock()
	if p.firstErr == nil {
		p.firstErr = err
	}
	p.errMu.Unlock()
}

// fromLines produces every non-empty line of r.
func (p *producer) fromLines(ctx context.Context, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	for ctx.Err() == nil {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		line = trimEOL(line)
		if len(line) > 0 {
			p.produce(ctx, line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	return ctx.Err()
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// finish waits for every record to be acknowledged, prints the summary
// and reports any failure.
func (p *producer) finish(ctx context.Context) error {
	flushErr := p.cl.Flush(ctx)
	close(p.stopProgress)
	<-p.progressDone
	elapsed := time.Since(p.start)
	acked := p.acked.Load()
	fmt.Fprintf(p.stderr, "%s: done: %d records acknowledged, %d failed, in %s (%.0f records/s)\n",
		p.what, acked, p.failed.Load(), elapsed.Round(time.Millisecond), float64(acked)/elapsed.Seconds())
	if flushErr != nil {
		return fmt.Errorf("flush: %w", flushErr)
	}
	if n := p.failed.Load(); n > 0 {
		return fmt.Errorf("%d records failed, first: %w", n, p.firstErr)
	}
	return nil
}
