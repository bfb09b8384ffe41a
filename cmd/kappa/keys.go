package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/keys"
	"github.com/kappa-stream/kappa/privacy"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/serve/auth"
	"github.com/kappa-stream/kappa/topology"
)

// envClusterSecret is the environment variable that holds the cluster
// secret when --cluster-secret-file is not given.
const envClusterSecret = "KAPPA_CLUSTER_SECRET"

// authConfig is the access configuration of an instance's HTTP API.
type authConfig struct {
	keysTopic  string
	insecure   bool
	requireKey bool
	secretFile string
	floors     serve.Floors
	// secret is the cluster secret read from secretFile or the
	// environment; nil until checkAuth.
	secret []byte
	// standalone is true for kappa up, which draws a random cluster
	// secret when none is given.
	standalone bool
}

// authFlags declares the access flags of an instance.
func authFlags(fs *flag.FlagSet, c *authConfig) {
	fs.StringVar(&c.keysTopic, "keys-topic", keys.Topic, "compacted topic of the API keys (their hashes); every instance of a deployment follows the same")
	fs.BoolVar(&c.insecure, "insecure", false, "serve requests without an API key as admin on any address (default: only when --http is a loopback address)")
	fs.BoolVar(&c.requireKey, "require-keys", false, "require an API key even on a loopback address")
	fs.StringVar(&c.secretFile, "cluster-secret-file", "", "file holding the secret every instance of the cluster shares to call the others (default: $"+envClusterSecret+")")
	fs.Int64Var(&c.floors.MinZoneFans, "min-zone-fans", serve.DefaultMinZoneFans, "fewest fans a fan-zone cell shows to a non-admin key")
	fs.IntVar(&c.floors.MaxPublicRes, "max-public-res", serve.DefaultMaxPublicRes, "finest H3 resolution of fan zones a non-admin key may read")
}

// checkAuth validates the access flags and reads the cluster secret.
func checkAuth(fs *flag.FlagSet, c *authConfig) error {
	switch {
	case c.insecure && c.requireKey:
		return usageErrorf(fs, "--insecure and --require-keys contradict each other")
	case c.keysTopic == "":
		return usageErrorf(fs, "--keys-topic is empty")
	case c.floors.MinZoneFans < 1:
		return usageErrorf(fs, "--min-zone-fans %d: want 1 or more", c.floors.MinZoneFans)
	case c.floors.MaxPublicRes < 0 || c.floors.MaxPublicRes > 15:
		return usageErrorf(fs, "--max-public-res %d: want 0…15", c.floors.MaxPublicRes)
	}
	switch {
	case c.secretFile != "":
		b, err := os.ReadFile(c.secretFile)
		if err != nil {
			return usageErrorf(fs, "--cluster-secret-file: %s", err)
		}
		c.secret = b
	case os.Getenv(envClusterSecret) != "":
		c.secret = []byte(os.Getenv(envClusterSecret))
	case c.standalone:
		return nil
	default:
		return usageErrorf(fs, "a cluster secret is required (--cluster-secret-file or $%s): every instance of the cluster shares it, e.g. openssl rand -hex 32", envClusterSecret)
	}
	if _, err := auth.NewCluster(c.secret); err != nil {
		return usageErrorf(fs, "cluster secret: %s", err)
	}
	return nil
}

// guard is the access control of one instance's HTTP API.
type guard struct {
	keys    *keys.Follower
	cluster *auth.Cluster
	open    bool
}

// newGuard provisions the keys topic, decides whether the API runs open
// (no key needed: on loopback unless --require-keys, anywhere with
// --insecure) and refuses to serve on another address without any
// active key.
func newGuard(ctx context.Context, c authConfig, brokers []string, adm *kadm.Client, addr net.Addr, logger *slog.Logger, opts ...kgo.Opt) (*guard, error) {
	if err := topology.Provision(ctx, adm, logger, topology.TopicSpec{Name: c.keysTopic,
		Partitions: keys.TopicPartitions, Configs: keys.TopicConfigs()}); err != nil {
		return nil, fmt.Errorf("keys topic: %w", err)
	}
	secret := c.secret
	if secret == nil {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		secret = []byte(hex.EncodeToString(secret))
		logger.Warn("no cluster secret (--cluster-secret-file or $" + envClusterSecret + "): drew one for this process, so no other instance can forward to it or read its partitions; give every instance the same to run more than one")
	}
	cl, err := auth.NewCluster(secret)
	if err != nil {
		return nil, err
	}
	list, err := keys.Load(ctx, brokers, c.keysTopic, opts...)
	if err != nil {
		return nil, err
	}
	active := 0
	for _, k := range list {
		if k.Active() {
			active++
		}
	}
	mode, err := auth.Decide(addr, c.insecure, c.requireKey, active)
	switch {
	case errors.Is(err, auth.ErrNoKeys):
		return nil, fmt.Errorf("refusing to serve on %s without API keys: create one with kappa keys create --role admin --brokers %s "+
			"(e.g. from a kappa up on a loopback address), or pass --insecure", addr, strings.Join(brokers, ","))
	case mode == auth.Insecure:
		logger.Warn("HTTP API open (--insecure): requests without an API key are served as admin", "addr", addr.String())
	case mode == auth.OpenLoopback:
		logger.Info("HTTP API open on loopback: requests without an API key are served as admin (--require-keys closes it)", "addr", addr.String(), "keys", active)
	default:
		logger.Info("HTTP API requires API keys", "addr", addr.String(), "keys", active)
	}
	g := &guard{cluster: cl, open: mode.Open()}
	if g.keys, err = keys.NewFollower(brokers, c.keysTopic, logger, opts...); err != nil {
		return nil, err
	}
	return g, nil
}

// wrap guards h.
func (g *guard) wrap(h http.Handler, logger *slog.Logger) (http.Handler, error) {
	return auth.New(auth.Config{Keys: g.keys, Cluster: g.cluster, Open: g.open, Logger: logger, Synced: g.keys.Synced()}, h)
}

func runKeys(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	const synopsis = "Manages the API keys of the HTTP API, kept (as hashes) in a compacted topic every\n" +
		"instance follows:\n\n" +
		"  kappa keys create --role admin|reader|partner [--name N]   prints a new key, once\n" +
		"  kappa keys list                                           id, name, role, created, revoked\n" +
		"  kappa keys revoke <id or name>                            stops the key on every instance"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stderr, "Usage: kappa keys create|list|revoke [flags]\n\n%s\n", synopsis)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	sub := args[0]
	fs := newFlagSet("keys "+sub, synopsis, stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	topic := fs.String("keys-topic", keys.Topic, "compacted topic of the API keys")
	secFlags := securityFlags(fs)
	var role, name, window string
	var budget float64
	switch sub {
	case "create":
		fs.StringVar(&role, "role", "", "admin, reader or partner (required)")
		fs.StringVar(&name, "name", "", "a label for the key, e.g. who holds it")
		fs.Float64Var(&budget, "epsilon-budget", 0, "a partner key's privacy budget: the ε its partner API answers may spend in --budget-window (required with --role partner)")
		fs.StringVar(&window, "budget-window", "", "the sliding window of --epsilon-budget, e.g. 30d or 720h (default: the key's lifetime: once spent, spent for good)")
	case "list", "revoke":
	default:
		fmt.Fprintf(stderr, "kappa keys: unknown subcommand %q: want create, list or revoke\n", sub)
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	var ref string
	switch {
	case sub == "revoke" && fs.NArg() != 1:
		return usageErrorf(fs, "kappa keys revoke takes one key id or name")
	case sub == "revoke":
		ref = fs.Arg(0)
	case fs.NArg() > 0:
		return usageErrorf(fs, "unexpected argument %q", fs.Arg(0))
	}
	bs := splitBrokers(*brokers)
	if len(bs) == 0 {
		return usageErrorf(fs, "--brokers is empty")
	}
	sec, err := loadSecurity(fs, secFlags)
	if err != nil {
		return err
	}
	r, err := keys.ParseRole(role)
	if sub == "create" && err != nil {
		return usageErrorf(fs, "--role %q: want admin, reader or partner", role)
	}
	var win time.Duration
	if sub == "create" {
		if win, err = parseWindow(window); err != nil {
			return usageErrorf(fs, "--budget-window %q: %s", window, err)
		}
		switch {
		case r == keys.Partner && !(budget > 0):
			return usageErrorf(fs, "a partner key needs --epsilon-budget, a positive ε (e.g. 10)")
		case r != keys.Partner && (budget != 0 || window != ""):
			return usageErrorf(fs, "--epsilon-budget and --budget-window are for partner keys")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bs...)}, sec.Opts()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := topology.Provision(ctx, kadm.NewClient(cl), slog.New(slog.DiscardHandler),
		topology.TopicSpec{Name: *topic, Partitions: keys.TopicPartitions, Configs: keys.TopicConfigs()}); err != nil {
		return fmt.Errorf("keys topic: %w", err)
	}
	switch sub {
	case "create":
		token, k, err := keys.New(r, name, time.Now())
		if err != nil {
			return usageErrorf(fs, "%s", err)
		}
		k.EpsilonBudget, k.BudgetWindow = budget, win
		if err := keys.Put(ctx, cl, *topic, k); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created %s key %s%s; it is shown only now:\n", k.Role, k.ID, nameSuffix(k.Name))
		fmt.Fprintln(stdout, token)
		return nil
	case "list":
		list, err := keys.Load(ctx, bs, *topic, sec.Opts()...)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED\tBUDGET")
		for _, k := range list {
			revoked := "-"
			if k.Revoked != nil {
				revoked = k.Revoked.UTC().Format(time.RFC3339)
			}
			budget := "-"
			if k.Role == keys.Partner {
				budget = fmt.Sprintf("ε %g per %s", k.EpsilonBudget, windowText(k.BudgetWindow))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Created.UTC().Format(time.RFC3339), revoked, budget)
		}
		return tw.Flush()
	}
	list, err := keys.Load(ctx, bs, *topic, sec.Opts()...)
	if err != nil {
		return err
	}
	k, err := keys.Find(list, ref)
	if err != nil {
		return err
	}
	if k.Revoked != nil {
		fmt.Fprintf(stderr, "key %s%s was revoked at %s already\n", k.ID, nameSuffix(k.Name), k.Revoked.UTC().Format(time.RFC3339))
		return nil
	}
	now := time.Now().UTC()
	k.Revoked = &now
	if err := keys.Put(ctx, cl, *topic, k); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "revoked %s key %s%s\n", k.Role, k.ID, nameSuffix(k.Name))
	return nil
}

// parseWindow reads a budget window: whole days ("30d") or a Go duration;
// empty is 0, the key's lifetime.
func parseWindow(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			return 0, errors.New("want whole days (30d) or a duration (720h)")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want whole days (30d) or a duration (720h)")
	}
	return d, nil
}

// windowText is a budget window as kappa keys list shows it.
func windowText(d time.Duration) string {
	switch {
	case d == 0:
		return "lifetime"
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// partners identifies the partner keys of the partner API's requests
// (serve.PartnerAuth).
type partners struct{ keys auth.Verifier }

func (p partners) Partner(r *http.Request) (privacy.Partner, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return privacy.Partner{}, serve.ErrNoKey
	}
	k, err := p.keys.Verify(strings.TrimSpace(token))
	switch {
	case err != nil:
		return privacy.Partner{}, fmt.Errorf("%w: %v", serve.ErrNoKey, err)
	case k.Role != keys.Partner:
		return privacy.Partner{}, serve.ErrNotPartner
	}
	return privacy.Partner{ID: k.ID, EpsilonBudget: k.EpsilonBudget, Window: k.BudgetWindow}, nil
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}
