package keys

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/kappa-stream/kappa/topology"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNewAndVerify draws keys and verifies tokens: their own, others',
// tampered, malformed and revoked ones.
func TestNewAndVerify(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	byID := map[string]Key{}
	tokens := map[Role]string{}
	for _, r := range []Role{Admin, Reader, Partner} {
		tok, k, err := New(r, "ops "+string(r), now)
		if err != nil {
			t.Fatal(err)
		}
		if !tokenRE.MatchString(tok) || !strings.Contains(tok, k.ID) || k.Role != r || !k.Created.Equal(now) || !k.Active() {
			t.Fatalf("token %q, key %+v", tok, k)
		}
		if strings.Contains(k.Hash, tok[len(tokenPrefix)+2*idBytes+1:]) {
			t.Fatal("the stored key holds the secret")
		}
		byID[k.ID], tokens[r] = k, tok
	}
	if _, _, err := New("root", "", now); err == nil {
		t.Fatal("a key with role root")
	}
	if _, _, err := New(Reader, "bad\nname", now); err == nil {
		t.Fatal("a name with a newline")
	}
	for r, tok := range tokens {
		if k, err := verify(byID, tok); err != nil || k.Role != r {
			t.Fatalf("%s token: %+v, %v", r, k, err)
		}
	}
	admin := tokens[Admin]
	last := admin[len(admin)-1:]
	flipped := "A"
	if last == "A" {
		flipped = "B"
	}
	otherID := tokenPrefix + byID[mustID(t, tokens[Reader])].ID + admin[len(tokenPrefix)+2*idBytes:]
	for name, tok := range map[string]string{
		"tampered secret": admin[:len(admin)-1] + flipped,
		"another's id":    otherID,
		"unknown id":      tokenPrefix + "0000000000000000" + admin[len(tokenPrefix)+2*idBytes:],
		"empty":           "",
		"truncated":       admin[:len(admin)-1],
		"longer":          admin + "A",
		"no prefix":       strings.TrimPrefix(admin, tokenPrefix),
	} {
		if _, err := verify(byID, tok); !errors.Is(err, ErrUnknown) {
			t.Errorf("%s: %v, want ErrUnknown", name, err)
		}
	}
	k := byID[mustID(t, admin)]
	k.Revoked = &now
	byID[k.ID] = k
	if _, err := verify(byID, admin); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
}

func mustID(t *testing.T, token string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(token)
	if m == nil {
		t.Fatalf("token %q", token)
	}
	return m[1]
}

func TestApplyRejects(t *testing.T) {
	_, k, err := New(Reader, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, value, err := encode(k)
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][2]string{
		"bad key":        {"key/xyz", string(value)},
		"other prefix":   {"serving", string(value)},
		"id mismatch":    {"key/0000000000000000", string(value)},
		"not JSON":       {string(key), "{"},
		"unknown role":   {string(key), strings.Replace(string(value), `"reader"`, `"root"`, 1)},
		"truncated hash": {string(key), strings.Replace(string(value), k.Hash, k.Hash[:10], 1)},
	} {
		byID := map[string]Key{}
		if err := apply(byID, []byte(rec[0]), []byte(rec[1])); err == nil || len(byID) != 0 {
			t.Errorf("%s: applied (%v)", name, err)
		}
	}
	byID := map[string]Key{}
	if err := apply(byID, key, value); err != nil || byID[k.ID] != k {
		t.Fatalf("apply: %v, %+v", err, byID)
	}
	if err := apply(byID, key, nil); err != nil || len(byID) != 0 {
		t.Fatalf("tombstone: %v, %+v", err, byID)
	}
}

func TestFind(t *testing.T) {
	now := time.Now()
	var list []Key
	for _, name := range []string{"dash", "ci", "ci", ""} {
		_, k, err := New(Reader, name, now)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, k)
	}
	if k, err := Find(list, "dash"); err != nil || k.ID != list[0].ID {
		t.Fatalf("by name: %+v %v", k, err)
	}
	if k, err := Find(list, list[2].ID); err != nil || k.ID != list[2].ID {
		t.Fatalf("by id: %+v %v", k, err)
	}
	for _, ref := range []string{"ci", "nobody", ""} {
		if _, err := Find(list, ref); err == nil {
			t.Errorf("Find(%q) found a key", ref)
		}
	}
}

// TestFollowRevokeLoad creates keys on a broker, follows them, revokes
// one and waits for the follower to refuse it; Load reads the same.
func TestFollowRevokeLoad(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(Topic, TopicPartitions, TopicConfigs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	created := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	adminTok, admin, err := New(Admin, "ops", created)
	if err != nil {
		t.Fatal(err)
	}
	readerTok, reader, err := New(Reader, "dash", created.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{admin, reader} {
		if err := Put(ctx, cl, Topic, k); err != nil {
			t.Fatal(err)
		}
	}
	// A record the follower cannot read changes nothing.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: Topic, Key: []byte("key/" + admin.ID), Value: []byte("nonsense")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	f, err := NewFollower(brokers, Topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-f.Synced():
	case <-ctx.Done():
		t.Fatal("follower never synced")
	}
	if k, err := f.Verify(adminTok); err != nil || k.Role != Admin {
		t.Fatalf("admin: %+v %v", k, err)
	}
	if got := f.List(); len(got) != 2 || got[0].ID != admin.ID || got[1].ID != reader.ID {
		t.Fatalf("list %+v", got)
	}

	revoked := created.Add(time.Hour)
	reader.Revoked = &revoked
	start := time.Now()
	if err := Put(ctx, cl, Topic, reader); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Verify(readerTok); errors.Is(err, ErrRevoked) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the follower never saw the revocation")
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Logf("revocation followed after %s", time.Since(start))
	if _, err := f.Verify(adminTok); err != nil {
		t.Fatalf("admin after revoking the reader: %v", err)
	}

	list, err := Load(ctx, brokers, Topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0] != admin || list[1].Revoked == nil || !list[1].Revoked.Equal(revoked) {
		t.Fatalf("loaded %+v", list)
	}
	var raw []string
	if err := topologyRead(ctx, brokers, func(v []byte) { raw = append(raw, string(v)) }); err != nil {
		t.Fatal(err)
	}
	for _, v := range raw {
		if strings.Contains(v, adminTok[len(tokenPrefix)+2*idBytes+1:]) || strings.Contains(v, readerTok[len(tokenPrefix)+2*idBytes+1:]) {
			t.Fatalf("the topic holds a secret: %s", v)
		}
	}
	if len(raw) != 4 {
		t.Fatalf("%d records, want 4", len(raw))
	}
}

// topologyRead calls fn with the value of every record of the keys
// topic.
func topologyRead(ctx context.Context, brokers []string, fn func([]byte)) error {
	return topology.ReadTopic(ctx, brokers, Topic, func(r *kgo.Record) { fn(r.Value) })
}

// BenchmarkRevocation measures how long a revocation takes to reach a
// follower: from the write of the revoked key's record to the first
// Verify that refuses the key.
func BenchmarkRevocation(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(Topic, TopicPartitions, TopicConfigs()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	f, err := NewFollower(brokers, Topic, nil)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-f.Synced()
	var total time.Duration
	for b.Loop() {
		tok, k, err := New(Reader, "", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if err := Put(ctx, cl, Topic, k); err != nil {
			b.Fatal(err)
		}
		for _, err := f.Verify(tok); err != nil; _, err = f.Verify(tok) {
			time.Sleep(100 * time.Microsecond)
		}
		now := time.Now()
		k.Revoked = &now
		if err := Put(ctx, cl, Topic, k); err != nil {
			b.Fatal(err)
		}
		for _, err := f.Verify(tok); !errors.Is(err, ErrRevoked); _, err = f.Verify(tok) {
			time.Sleep(100 * time.Microsecond)
		}
		total += time.Since(now)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/revocation")
}

// BenchmarkVerify measures the check of a key on every request.
func BenchmarkVerify(b *testing.B) {
	byID := map[string]Key{}
	var tok string
	for range 1000 {
		t, k, err := New(Reader, "", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		byID[k.ID], tok = k, t
	}
	for b.Loop() {
		if _, err := verify(byID, tok); err != nil {
			b.Fatal(err)
		}
	}
}
