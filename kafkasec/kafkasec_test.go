package kafkasec

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct {
	caFile, certFile, keyFile string
	server                    tls.Certificate
	pool                      *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kappa test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p := &pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := issue(3, "kappa", x509.ExtKeyUsageClientAuth)
	p.certFile = write("client.pem", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	p.keyFile = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

// secureCluster is a kfake cluster with a mutual-TLS listener and SASL
// users of every mechanism: plain-user, scram256-user, scram512-user.
func secureCluster(t *testing.T, p *pki) string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(&tls.Config{
			Certificates: []tls.Certificate{p.server},
			ClientCAs:    p.pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		}),
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plain-user", "plain-secret"),
		kfake.Superuser("SCRAM-SHA-256", "scram256-user", "scram256 secret=x"),
		kfake.Superuser("SCRAM-SHA-512", "scram512-user", "scram512-secret"),
		kfake.SeedTopics(1, "t"),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) string { return "" }

// pingKgo asks for metadata, once, with a franz-go client made with s's
// options.
func pingKgo(addr string, s Settings) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0)}, s.Opts()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err
}

// pingSarama produces a record with a sarama producer configured by s,
// as the goka catalog's clients are.
func pingSarama(addr string, s Settings) error {
	c := sarama.NewConfig()
	c.Version = sarama.V2_0_0_0
	c.Producer.Return.Successes = true
	c.Metadata.Retry.Max = 0
	c.Net.DialTimeout = 5 * time.Second
	s.Sarama(c)
	p, err := sarama.NewSyncProducer([]string{addr}, c)
	if err != nil {
		return err
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "t", Value: sarama.StringEncoder("x")})
	return err
}

// TestSecureClients connects franz-go and sarama clients to a kfake
// cluster that requires mutual TLS and SASL, with each mechanism and
// with credentials from a file and from the environment; and checks that
// a wrong password, a missing client certificate, an unknown CA and
// plaintext are refused.
func TestSecureClients(t *testing.T) {
	p := newPKI(t)
	addr := secureCluster(t, p)
	tlsFiles := Config{CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}
	env := func(user, pass string) func(string) string {
		return func(k string) string {
			return map[string]string{EnvUsername: user, EnvPassword: pass}[k]
		}
	}
	withSASL := func(mech, creds string) Config {
		c := tlsFiles
		c.Mechanism = mech
		if creds != "" {
			c.CredentialsFile = writeFile(t, creds)
		}
		return c
	}
	otherCA := newPKI(t)
	for _, tc := range []struct {
		name   string
		c      Config
		getenv func(string) string
		ok     bool
		// why is in the refusal's error (franz-go's: sarama's and a
		// refused SASL exchange's say only EOF).
		why string
	}{
		{"plain from file", withSASL(Plain, "username=plain-user\npassword=plain-secret\n"), noEnv, true, ""},
		{"scram-sha-256 from file, '=' and space in password", withSASL(ScramSHA256, "# kappa\r\nusername=scram256-user\r\npassword=scram256 secret=x\r\n"), noEnv, true, ""},
		{"scram-sha-512 from env", withSASL(ScramSHA512, ""), env("scram512-user", "scram512-secret"), true, ""},
		{"scram-sha-256 wrong password", withSASL(ScramSHA256, "username=scram256-user\npassword=nope\n"), noEnv, false, ""},
		{"plain wrong password", withSASL(Plain, ""), env("plain-user", "nope"), false, ""},
		{"scram-sha-512 user of another mechanism", withSASL(ScramSHA512, ""), env("scram256-user", "scram256 secret=x"), false, ""},
		{"no sasl", tlsFiles, noEnv, false, "is SASL missing"},
		{"no client certificate", Config{CAFile: p.caFile, Mechanism: Plain, CredentialsFile: writeFile(t, "username=plain-user\npassword=plain-secret")}, noEnv, false, "certificate required"},
		{"unknown CA", Config{CAFile: otherCA.caFile, CertFile: p.certFile, KeyFile: p.keyFile, Mechanism: Plain,
			CredentialsFile: writeFile(t, "username=plain-user\npassword=plain-secret")}, noEnv, false, "unknown authority"},
		{"plaintext", Config{Mechanism: Plain, CredentialsFile: writeFile(t, "username=plain-user\npassword=plain-secret")}, noEnv, false, "is TLS missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := tc.c.Load(tc.getenv)
			if err != nil {
				t.Fatal(err)
			}
			for _, client := range []struct {
				name string
				ping func(string, Settings) error
			}{{"franz-go", pingKgo}, {"sarama", pingSarama}} {
				err := client.ping(addr, s)
				if tc.ok && err != nil {
					t.Errorf("%s: %v", client.name, err)
				}
				if !tc.ok && err == nil {
					t.Errorf("%s: connected, want a refusal", client.name)
				}
				if err != nil && client.name == "franz-go" && !strings.Contains(err.Error(), tc.why) {
					t.Errorf("%s: refused with %q, want %q in it", client.name, err, tc.why)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name   string
		c      Config
		getenv func(string) string
		want   string
	}{
		{"unknown mechanism", Config{Mechanism: "gssapi"}, noEnv, `--sasl-mechanism "gssapi"`},
		{"cert without key", Config{CertFile: p.certFile}, noEnv, "--tls-cert and --tls-key go together"},
		{"credentials without mechanism", Config{CredentialsFile: "x"}, noEnv, "needs --sasl-mechanism"},
		{"no credentials", Config{Mechanism: Plain}, noEnv, "KAPPA_SASL_USERNAME"},
		{"env without password", Config{Mechanism: Plain}, func(k string) string {
			if k == EnvUsername {
				return "u"
			}
			return ""
		}, "KAPPA_SASL_PASSWORD"},
		{"missing credentials file", Config{Mechanism: Plain, CredentialsFile: "/nonexistent/creds"}, noEnv, "no such file"},
		{"credentials without password", Config{Mechanism: Plain, CredentialsFile: writeFile(t, "username=u\n")}, noEnv, "non-empty username= and password="},
		{"credentials with empty password", Config{Mechanism: Plain, CredentialsFile: writeFile(t, "username=u\npassword=\n")}, noEnv, "non-empty username= and password="},
		{"credentials unknown key", Config{Mechanism: Plain, CredentialsFile: writeFile(t, "user=u\npassword=hunter2\n")}, noEnv, `unknown key "user"`},
		{"credentials line without =", Config{Mechanism: Plain, CredentialsFile: writeFile(t, "username=u\nhunter2\n")}, noEnv, "line 2: want key=value"},
		{"CA file not PEM", Config{CAFile: writeFile(t, "hunter2")}, noEnv, "no PEM certificate"},
		{"missing CA file", Config{CAFile: "/nonexistent/ca.pem"}, noEnv, "--tls-ca"},
		{"key of another cert", Config{CertFile: p.certFile, KeyFile: newPKI(t).keyFile}, noEnv, "--tls-cert/--tls-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Load(tc.getenv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}

// TestFlags parses the flags into a Config, and checks that the zero
// Config loads to no options (plaintext, no SASL).
func TestFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"--tls-ca", "ca.pem", "--tls-cert", "c.pem", "--tls-key", "k.pem",
		"--sasl-mechanism", "scram-sha-512", "--sasl-credentials", "/run/creds"}); err != nil {
		t.Fatal(err)
	}
	want := Config{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", Mechanism: ScramSHA512, CredentialsFile: "/run/creds"}
	if c != want {
		t.Fatalf("parsed %+v, want %+v", c, want)
	}
	s, err := Config{}.Load(noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Opts()) != 0 || s.TLS() || s.Mechanism() != "" {
		t.Fatalf("the zero Config gives options %d, TLS %v, mechanism %q", len(s.Opts()), s.TLS(), s.Mechanism())
	}
	sc := sarama.NewConfig()
	s.Sarama(sc)
	if sc.Net.TLS.Enable || sc.Net.SASL.Enable {
		t.Fatal("the zero Settings enabled TLS or SASL in sarama")
	}
	s, err = Config{TLS: true}.Load(noEnv)
	if err != nil || !s.TLS() || len(s.Opts()) != 1 {
		t.Fatalf("--tls alone: %v, TLS %v, %d options", err, s.TLS(), len(s.Opts()))
	}
}

// TestCheck checks that Check passes with the right settings and names
// the cause without them.
func TestCheck(t *testing.T) {
	p := newPKI(t)
	addr := secureCluster(t, p)
	good, err := Config{CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile, Mechanism: Plain}.
		Load(func(k string) string {
			return map[string]string{EnvUsername: "plain-user", EnvPassword: "plain-secret"}[k]
		})
	if err != nil {
		t.Fatal(err)
	}
	noSASL, err := Config{CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}.Load(noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Check(ctx, append([]kgo.Opt{kgo.SeedBrokers(addr)}, good.Opts()...)...); err != nil {
		t.Fatalf("with TLS and SASL: %v", err)
	}
	otherCA, err := Config{CAFile: newPKI(t).caFile, CertFile: p.certFile, KeyFile: p.keyFile}.Load(noEnv)
	if err != nil {
		t.Fatal(err)
	}
	// NB: a refusal ends the check long before the minute is up (the
	// error says "refused"); a broker that cannot be dialled is waited
	// for until the context ends.
	for _, tc := range []struct {
		name    string
		addr    string
		opts    []kgo.Opt
		timeout time.Duration
		want    []string
	}{
		{"no SASL", addr, noSASL.Opts(), time.Minute, []string{"kafkasec: refused: ", "is SASL missing"}},
		{"plaintext", addr, nil, time.Minute, []string{"kafkasec: refused: ", "is TLS missing"}},
		{"unknown CA", addr, otherCA.Opts(), time.Minute, []string{"kafkasec: refused: ", "certificate signed by unknown authority"}},
		{"nothing listening", closedAddr(t), good.Opts(), 2 * time.Second, []string{"kafkasec: no broker answered: ", "unable to dial"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
		err := Check(ctx, append([]kgo.Opt{kgo.SeedBrokers(tc.addr)}, tc.opts...)...)
		cancel()
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %v, want an error with %q", tc.name, err, want)
			}
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
