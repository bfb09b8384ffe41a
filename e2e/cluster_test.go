package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kappa-stream/kappa/generate"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	ca, cert, key string
	server        tls.Certificate
	client        tls.Certificate
	pool          *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p := &testPKI{pool: x509.NewCertPool(), server: issue(2, x509.ExtKeyUsageServerAuth), client: issue(3, x509.ExtKeyUsageClientAuth)}
	p.pool.AddCert(ca)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	p.cert = write("client.pem", "CERTIFICATE", p.client.Certificate[0])
	keyDER, err := x509.MarshalECPrivateKey(p.client.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	p.key = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

// TestSecureCluster runs `kappa up --brokers` against a cluster that
// requires mutual TLS and SASL/SCRAM-SHA-512 (a managed Kafka's setup):
// without the credentials, or without TLS, it exits at once with the
// reason; with them, listens produced by `kappa produce` (credentials from
// the environment) are counted exactly, the catalog, whose goka clients
// are sarama's, puts the names into the answers, and `kappa status` and a
// `kappa replay` with a cutover work.
func TestSecureCluster(t *testing.T) {
	const (
		user     = "kappa-e2e"
		password = "s3cret = with spaces"
		n        = 20_000
	)
	p := newTestPKI(t)
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", user, password),
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kafka := c.ListenAddrs()[0]
	creds := filepath.Join(t.TempDir(), "sasl")
	if err := os.WriteFile(creds, []byte("username="+user+"\npassword="+password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsArgs := []string{"--tls-ca", p.ca, "--tls-cert", p.cert, "--tls-key", p.key}
	saslArgs := []string{"--sasl-mechanism", "scram-sha-512", "--sasl-credentials", creds}
	up := func(args ...string) []string {
		return append([]string{"up", "--brokers", kafka, "--data", t.TempDir(), "--http", freeAddr(t)}, args...)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"without SASL", up(tlsArgs...), 1, "kafka at " + kafka + ": kafkasec: refused: broker closed the connection immediately after a request was issued, which often happens when SASL is required but not provided: is SASL missing?"},
		{"without TLS", up(saslArgs...), 1, "is TLS missing?"},
		{"without a client certificate", up("--tls-ca", p.ca, "--sasl-mechanism", "scram-sha-512", "--sasl-credentials", creds), 1, "certificate required"},
		{"a mechanism without credentials", up(append(tlsArgs, "--sasl-mechanism", "scram-sha-512")...), 2, "needs credentials: --sasl-credentials <file>, or $KAPPA_SASL_USERNAME and $KAPPA_SASL_PASSWORD"},
		{"the embedded broker with TLS", []string{"up", "--data", t.TempDir(), "--tls"}, 2, "the --tls and --sasl flags are for an external cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			cmd := exec.Command(kappaBin, tc.args...)
			cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "KAPPA_SASL_") })
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit code %d, want %d with %q; output:\n%s", code, tc.code, tc.want, out)
			}
			if strings.Contains(string(out), password) {
				t.Fatalf("the output shows the password:\n%s", out)
			}
			t.Logf("refused in %s", time.Since(start).Round(time.Millisecond))
		})
	}

	cfg := testConfig(n)
	d := generateDataset(t, cfg)
	httpAddr := freeAddr(t)
	startKappa(t, "up.log", append([]string{"up", "--brokers", kafka, "--data", t.TempDir(), "--http", httpAddr}, append(tlsArgs, saslArgs...)...)...)
	waitReady(t, httpAddr)

	produce := exec.Command(kappaBin, append([]string{"produce", "--brokers", kafka, "--file", d.writeLines(t, "all.jsonl", 0, n, false),
		"--sasl-mechanism", "scram-sha-512"}, tlsArgs...)...)
	produce.Env = append(os.Environ(), "KAPPA_SASL_USERNAME="+user, "KAPPA_SASL_PASSWORD="+password)
	if out, err := produce.CombinedOutput(); err != nil || !strings.Contains(string(out), "done:") {
		t.Fatalf("kappa produce with the credentials from the environment: %v\n%s", err, out)
	}
	genFlags := []string{"generate", "--catalog", "--seed", itoa(cfg.Seed), "--users", itoa(int64(cfg.Users)),
		"--artists", itoa(int64(cfg.Artists)), "--songs", itoa(int64(cfg.Songs)), "--events", itoa(n),
		"--scenario", "live-drop", "--live-drop-listeners", itoa(int64(cfg.LiveDropListeners)), "--brokers", kafka}
	runKappa(t, 0, append(append(genFlags, tlsArgs...), saslArgs...)...)

	clientTLS := &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS12}
	adm := newAdmin(t, kafka, kgo.DialTLSConfig(clientTLS), kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
	waitAdminCaughtUp(t, adm, "v1", n, 2*time.Minute, httpAddr)
	c1 := newClient(httpAddr)
	waitArtists(t, c1, d.model)
	checkAllPlays(t, c1, d.model)
	g, err := generate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkNames(t, c1, d, cleanTable(g.CatalogFeed(), nil))

	// The operator's commands: status, then a replay into v2 with a cutover.
	sec := append(append([]string{"--brokers", kafka}, tlsArgs...), saslArgs...)
	if out := runKappa(t, 0, append([]string{"status", "--http", httpAddr}, sec...)...); !strings.Contains(out, "kappa.v1.users: partitions [0 1 2 3 4 5 6 7 8 9 10 11], lag 0") {
		t.Errorf("kappa status output lacks stage 1 at lag 0:\n%s", out)
	}
	out := runKappa(t, 0, append([]string{"replay", "--from", "earliest", "--cutover"}, sec...)...)
	for _, want := range []string{"v2 has caught up", "cutover: 1 instance(s) serve v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	waitArtists(t, c1, d.model)
	checkAllPlays(t, c1, d.model)
}

// e2eBrokersEnv names an external Kafka cluster (comma-separated seed
// brokers, plaintext) that TestMultiBroker runs against instead of its
// in-process one. The test deletes kappa's topics and groups on it first:
// point it at a cluster for tests only.
const e2eBrokersEnv = "KAPPA_E2E_BROKERS"

// kappaTopic reports whether topic is one kappa makes or reads.
func kappaTopic(topic string) bool {
	for _, prefix := range []string{"listens", "kappa.", "catalog.", "song-features"} {
		if strings.HasPrefix(topic, prefix) {
			return true
		}
	}
	return false
}

// multiBrokerCluster returns the seed brokers of the cluster of
// TestMultiBroker: $KAPPA_E2E_BROKERS, emptied of kappa's topics and
// groups, or else an in-process cluster of three brokers.
func multiBrokerCluster(t *testing.T) []string {
	t.Helper()
	if env := os.Getenv(e2eBrokersEnv); env != "" {
		seeds := strings.Split(env, ",")
		wipeKappa(t, newAdmin(t, seeds[0]))
		t.Logf("running against %s=%s", e2eBrokersEnv, env)
		return seeds
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// wipeKappa deletes kappa's groups and topics and waits until the
// cluster no longer lists them (a group whose members have not timed out
// yet cannot be deleted: it is tried again).
func wipeKappa(t *testing.T, adm *kadm.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, time.Minute, "kappa's groups deleted", func() (bool, string) {
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, g := range groups.Groups() {
			if strings.HasPrefix(g, "kappa.") {
				left = append(left, g)
			}
		}
		var why []string
		if len(left) > 0 {
			resp, err := adm.DeleteGroups(ctx, left...)
			if err != nil {
				return false, err.Error()
			}
			for _, r := range resp.Sorted() {
				if r.Err != nil {
					why = append(why, r.Group+": "+r.Err.Error())
				}
			}
		}
		return len(left) == 0, "left: " + strings.Join(why, ", ")
	})
	waitFor(t, time.Minute, "kappa's topics deleted", func() (bool, string) {
		topics, err := adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, name := range topics.Names() {
			if kappaTopic(name) {
				left = append(left, name)
			}
		}
		if len(left) > 0 {
			if _, err := adm.DeleteTopics(ctx, left...); err != nil {
				return false, err.Error()
			}
		}
		return len(left) == 0, "left: " + strings.Join(left, ", ")
	})
}

// TestMultiBroker runs two `kappa process` instances against a cluster
// of three brokers (or $KAPPA_E2E_BROKERS) and checks that every topic
// kappa provisions is replicated min(3, brokers) times with
// min.insync.replicas 2 when three, and that the answers and the DLQ are
// exact.
func TestMultiBroker(t *testing.T) {
	const n = 100_000
	seeds := multiBrokerCluster(t)
	brokers := strings.Join(seeds, ",")
	d := generateDataset(t, testConfig(n))
	var instances []*instance
	for _, id := range []string{"a", "b"} {
		addr := freeAddr(t)
		in := &instance{id: id, http: addr, args: []string{"process", "--brokers", brokers,
			"--instance-id", id, "--data", t.TempDir(), "--http", addr}}
		in.start(t)
		instances = append(instances, in)
	}
	for _, in := range instances {
		waitReady(t, in.http)
	}
	produceWithKappa(t, brokers, d.writeLines(t, "all.jsonl", 0, n, false))
	waitCaughtUp(t, seeds[0], n, 3*time.Minute, addrs(instances)...)
	checkDLQ(t, seeds[0], d)
	for _, in := range instances {
		waitArtists(t, newClient(in.http), d.model)
		checkAllPlays(t, newClient(in.http), d.model)
	}

	adm := newAdmin(t, seeds[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := min(3, len(md.Brokers))
	if os.Getenv(e2eBrokersEnv) == "" && want != 3 {
		t.Fatalf("the in-process cluster lists %d brokers, want 3", len(md.Brokers))
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range topics.Names() {
		if kappaTopic(name) {
			names = append(names, name)
		}
	}
	for _, need := range []string{"listens", "listens.dlq", "kappa.control", "kappa.instances", "kappa.v1.repartition",
		"kappa.v1.rollups-changelog", "catalog.feed", "kappa.catalog-table"} {
		if !slices.Contains(names, need) {
			t.Errorf("topic %s missing; kappa's topics: %v", need, names)
		}
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]bool{}
	for _, name := range names {
		for _, p := range topics[name].Partitions {
			leaders[p.Leader] = true
			if len(p.Replicas) != want {
				t.Errorf("%s/%d: replicas %v, want %d", name, p.Partition, p.Replicas, want)
			}
		}
		rc, err := configs.On(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		isr := "(not listed)"
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" {
				isr = c.MaybeValue()
			}
		}
		if want == 3 && isr != "2" {
			t.Errorf("%s: min.insync.replicas %s, want 2", name, isr)
		}
	}
	if len(leaders) != len(md.Brokers) {
		t.Errorf("partition leaders on brokers %v; the cluster has %d", slices.Sorted(maps.Keys(leaders)), len(md.Brokers))
	}
	t.Logf("%d topics, each partition on %d of %d brokers, leaders spread over all", len(names), want, len(md.Brokers))
}

// waitArtists waits until every artist's plays by day are the model's.
// NB: the harness's wait for the stores (waitApplied) can pass before a
// stage-2 partition's first transaction is in its store: /v1/status
// reports the group's committed offset until the partition's first
// commit is applied. Every listen counts in its artist's answer, so this
// is the condition checkAllPlays needs.
func waitArtists(t testing.TB, c *client, m *model) {
	t.Helper()
	waitFor(t, time.Minute, "every artist's plays", func() (bool, string) {
		for id, cells := range m.artists {
			path := "/v1/artists/" + itoa(id) + "/plays?from=" + m.minDay + "&to=" + m.maxDay + "&by=day"
			var a playsAnswer
			if _, err := c.getJSON(path, &a); err != nil {
				return false, err.Error()
			}
			if g, w := got(a, "day"), expected(cells, m.minDay, m.maxDay, "day", ""); g != w {
				return false, path + ": got " + g + ", want " + w
			}
		}
		return true, ""
	})
}
