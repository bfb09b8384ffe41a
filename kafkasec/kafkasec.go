// Package kafkasec turns the operator's Kafka security settings (TLS
// files, a SASL mechanism, credentials from a file or the environment)
// into the options of every Kafka client kappa makes: franz-go's kgo.Opts
// and the sarama configuration of the goka catalog.
//
// Credentials never come from a flag value (a flag shows in ps, in shell
// history and in a pod's spec): they come from a file (--sasl-credentials)
// or from the environment (KAPPA_SASL_USERNAME, KAPPA_SASL_PASSWORD).
package kafkasec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms, as the --sasl-mechanism flag names them.
const (
	Plain       = "plain"
	ScramSHA256 = "scram-sha-256"
	ScramSHA512 = "scram-sha-512"
)

// The environment variables the SASL credentials are read from when no
// credentials file is given.
const (
	EnvUsername = "KAPPA_SASL_USERNAME"
	EnvPassword = "KAPPA_SASL_PASSWORD"
)

// Config is the operator's Kafka security configuration, as parsed from
// the command line. The zero Config is plaintext without authentication.
type Config struct {
	// TLS dials the brokers with TLS, verifying them against the
	// system's roots (or CAFile). Implied by CAFile and CertFile.
	TLS bool
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates (default: the system's roots).
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
	// Mechanism is the SASL mechanism: "" (none), Plain, ScramSHA256 or
	// ScramSHA512. The credentials come from CredentialsFile or, without
	// it, from EnvUsername and EnvPassword.
	Mechanism string
	// CredentialsFile holds the SASL credentials as two lines,
	// "username=…" and "password=…" (the value runs to the end of the
	// line, '=' and spaces included; blank lines and lines starting with
	// '#' are skipped).
	CredentialsFile string
}

// Flags declares the security flags on fs, writing into c. Every command
// that talks to Kafka declares the same.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.TLS, "tls", false, "connect to the brokers with TLS, verified against the system's roots (implied by --tls-ca and --tls-cert)")
	fs.StringVar(&c.CAFile, "tls-ca", "", "PEM file of the CAs that sign the brokers' certificates (default: the system's roots)")
	fs.StringVar(&c.CertFile, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	fs.StringVar(&c.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.Mechanism, "sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512; credentials from --sasl-credentials or $"+EnvUsername+" and $"+EnvPassword)
	fs.StringVar(&c.CredentialsFile, "sasl-credentials", "", "file with the SASL credentials: lines username=… and password=… (default: the environment)")
}

// Validate reports settings that do not fit together; it reads no file.
func (c *Config) Validate() error {
	switch c.Mechanism {
	case "", Plain, ScramSHA256, ScramSHA512:
	default:
		return fmt.Errorf("kafkasec: --sasl-mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.Mechanism)
	}
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("kafkasec: --tls-cert and --tls-key go together")
	case c.CredentialsFile != "" && c.Mechanism == "":
		return errors.New("kafkasec: --sasl-credentials needs --sasl-mechanism")
	}
	return nil
}

// Settings are loaded security settings, ready to configure clients. The
// zero Settings is plaintext without authentication. Settings are safe to
// share between goroutines and clients.
type Settings struct {
	tls       *tls.Config
	mechanism string
	user      string
	password  string
}

// Load validates c and reads its files and, for SASL credentials without
// a file, the environment through getenv (os.Getenv in production).
func (c Config) Load(getenv func(string) string) (Settings, error) {
	if err := c.Validate(); err != nil {
		return Settings{}, err
	}
	var s Settings
	if c.TLS || c.CAFile != "" || c.CertFile != "" {
		tc, err := c.tlsConfig()
		if err != nil {
			return Settings{}, err
		}
		s.tls = tc
	}
	if c.Mechanism == "" {
		return s, nil
	}
	s.mechanism = c.Mechanism
	if c.CredentialsFile != "" {
		var err error
		if s.user, s.password, err = readCredentials(c.CredentialsFile); err != nil {
			return Settings{}, err
		}
	} else {
		s.user, s.password = getenv(EnvUsername), getenv(EnvPassword)
		if s.user == "" || s.password == "" {
			return Settings{}, fmt.Errorf("kafkasec: --sasl-mechanism %s needs credentials: --sasl-credentials <file>, or $%s and $%s",
				c.Mechanism, EnvUsername, EnvPassword)
		}
	}
	return s, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafkasec: --tls-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafkasec: --tls-ca %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafkasec: --tls-cert/--tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// readCredentials reads a username=/password= file. NB: its errors never
// quote the file's lines, which hold the password.
func readCredentials(path string) (user, password string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("kafkasec: --sasl-credentials: %w", err)
	}
	var gotUser, gotPassword bool
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		switch k = strings.TrimSpace(k); {
		case !ok:
			return "", "", fmt.Errorf("kafkasec: --sasl-credentials %s: line %d: want key=value", path, i+1)
		case k == "username":
			user, gotUser = v, true
		case k == "password":
			password, gotPassword = v, true
		default:
			return "", "", fmt.Errorf("kafkasec: --sasl-credentials %s: line %d: unknown key %q (want username or password)", path, i+1, k)
		}
	}
	if !gotUser || !gotPassword || user == "" || password == "" {
		return "", "", fmt.Errorf("kafkasec: --sasl-credentials %s: want a non-empty username= and password=", path)
	}
	return user, password, nil
}

// TLS reports whether clients dial with TLS.
func (s Settings) TLS() bool { return s.tls != nil }

// Mechanism is the SASL mechanism ("" without SASL).
func (s Settings) Mechanism() string { return s.mechanism }

// Opts are the franz-go options that secure a client: TLS dialing and the
// SASL mechanism; none for the zero Settings.
func (s Settings) Opts() []kgo.Opt {
	var opts []kgo.Opt
	if s.tls != nil {
		// NB: franz-go clones the config per connection and sets the
		// server name from the broker's host when it is empty.
		opts = append(opts, kgo.DialTLSConfig(s.tls))
	}
	if m := s.saslMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func (s Settings) saslMechanism() sasl.Mechanism {
	switch s.mechanism {
	case Plain:
		return plain.Auth{User: s.user, Pass: s.password}.AsMechanism()
	case ScramSHA256:
		return scram.Auth{User: s.user, Pass: s.password}.AsSha256Mechanism()
	case ScramSHA512:
		return scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism()
	}
	return nil
}

// Sarama sets c's TLS and SASL to s (for goka's sarama clients); the zero
// Settings leaves c as it is.
func (s Settings) Sarama(c *sarama.Config) {
	if s.tls != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = s.tls.Clone()
	}
	if s.mechanism == "" {
		return
	}
	c.Net.SASL.Enable = true
	c.Net.SASL.Handshake = true
	c.Net.SASL.User, c.Net.SASL.Password = s.user, s.password
	switch s.mechanism {
	case Plain:
		c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case ScramSHA256:
		c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{sha512: false} }
	case ScramSHA512:
		c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{sha512: true} }
	}
}

// checkRefusals is how many times in a row Check takes a refusal from a
// broker that answered (a TLS handshake or SASL exchange that failed)
// before it gives up; a broker that cannot be dialled is waited for.
const checkRefusals = 3

// Check connects with opts (the seed brokers, Opts, …) and asks for the
// cluster's metadata, and returns why it failed: a client would retry a
// refused TLS handshake or SASL exchange until its own timeout, and
// report only that. It retries until ctx ends while no broker can be
// dialled, and gives up after a few refusals.
func Check(ctx context.Context, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append(slices.Clip(opts), kgo.RequestRetries(0))...)
	if err != nil {
		return fmt.Errorf("kafkasec: client: %w", err)
	}
	defer cl.Close()
	var last error
	for refusals := 0; ; {
		// NB: a Metadata request, not ApiVersions (Ping): a broker
		// that requires SASL answers ApiVersions before the exchange.
		_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		switch {
		case err == nil:
			return nil
		case ctx.Err() == nil || last == nil:
			last = err
		}
		if !isDial(err) && ctx.Err() == nil {
			if refusals++; refusals == checkRefusals {
				return fmt.Errorf("kafkasec: refused: %w", last)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkasec: no broker answered: %w", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// isDial reports whether err is a failure to reach a broker at all
// (nothing listening, no route, DNS), as opposed to a broker's refusal.
func isDial(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
