// Package similar keeps the LSH indexes behind GET /v1/users/{id}/similar
// and GET /v1/songs/{id}/similar on kappa's topology, with the hashing of
// package lsh:
//
//   - similar users: stage 1 ([Stage1], on a partition of listens)
//     keeps the set of artists each user plays, table 0x42 | user → set;
//     the set whose MinHash signature stage 2 has, table 0x44 | user →
//     set; and the users whose set grew since, table 0x45 | user → 0x01;
//   - similar songs: the features stage ([FeatureTask], on a partition of
//     song-features) keeps each song's latest vector, table 0x43 | song →
//     vector;
//   - when an item (a user's signature and artist set, a song's vector) changes, its
//     stage sends the new item to the stage-2 partition of its item key
//     and, for every bucket it left or joined (lsh.Diff of the buckets of
//     the item stage 2 had and of the new one), a leave or join entry to
//     the stage-2 partition of the bucket key: a song's at the end of the
//     commit interval, a user's once its set has grown for Config.Delay
//     (the changes of that time move its entries once);
//   - stage 2 ([Stage2]) keeps the items, table 0x41 | kind | id →
//     item, and the bucket members in chunks of ascending ids, table
//     0x40 | kind | bucket | start → ids (index.go).
//
// Every change travels in the transaction of the interval that made it,
// with the stage's store changes and input offsets, and is applied by
// stage 2 in its own: an entry is added once and removed once (exactly
// once), so the members of a bucket are exactly the items whose current
// buckets include it. A stage-2 partition gets an item's entries from the
// one stage-1 partition that owns the item, in the order they were made,
// so a later leave never overtakes the join it undoes.
//
// A query ([Index.Similar]) reads its item, then the members of its
// buckets (capped by lsh.Limits: oversized buckets), then scores the
// candidates that share the most buckets with it against the query's
// item: exact Jaccard of the artist sets for users (sets.go: a user's
// item is its signature and its set), exact cosine of the vectors for
// songs. The reads go through a [Source], which finds the partitions
// wherever they are.
package similar

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/state"
)

// Kind is what an index holds: users or songs.
type Kind byte

const (
	// Users are indexed by the MinHash of the artists they play.
	Users Kind = 'u'
	// Songs are indexed by random hyperplanes over their feature vectors.
	Songs Kind = 's'
)

func (k Kind) String() string {
	if k == Users {
		return "user"
	}
	return "song"
}

// Store tables of the package.
const (
	tableMember  byte = 0x40 // stage 2: kind | bucket | start → a chunk of ids
	tableItem    byte = 0x41 // stage 2: kind | id → signature or vector
	tableArtists byte = 0x42 // stage 1: user → the artists played
	tableVector  byte = 0x43 // features stage: song → vector
	// stage 1: user → the artists whose signature stage 2 has (published)
	tablePublished byte = 0x44
	// stage 1: user → since when while the user's signature is not
	// published (processors.PendingQueue)
	tablePending byte = 0x45
	// stage 1: one key, how many users are pending and since when the
	// oldest waits (processors.PendingQueue)
	tableSummary byte = 0x46
)

// Format is the first byte of a similar-index record of the repartition
// topic.
const Format byte = 0x53

// IsDelta reports whether a record value of the repartition topic is a
// similar-index record.
func IsDelta(value []byte) bool { return len(value) > 0 && value[0] == Format }

// Config is the configuration of the similarity indexes (the flags
// --minhash-bands, --minhash-rows, --hyperplane-tables,
// --hyperplane-bits, --feature-dim, --similar-bucket-cap,
// --similar-candidates). The hashing is fixed for a topology version:
// changing it changes the bucket ids, so it takes a replay. Zero values
// mean the defaults of package lsh.
type Config struct {
	MinHash     lsh.MinHashConfig
	Hyperplanes lsh.HyperplaneConfig
	Limits      lsh.Limits
	// MinBands is the fewest bands a candidate user shares with the
	// query user to be scored, when k candidates share that many
	// (--minhash-min-bands; lsh.Candidates.Best). 0: DefaultMinBands.
	MinBands int
	// Delay is how long a user's changed signature waits before stage 2
	// gets it (--similar-delay): the changes of that time move the
	// user's bucket entries once. 0: at the end of each commit interval.
	Delay time.Duration
}

// DefaultDelay is the default of Config.Delay (the flag's).
const DefaultDelay = 5 * time.Second

// Defaults of the users' MinHash (the flags --minhash-bands and
// --minhash-rows), chosen for candidate recall now that candidates are
// ranked by their exact Jaccard: a user at Jaccard 0.3 shares three
// bands or more of 80×2 with probability 0.979, at 0.35 0.998
// (docs/similarity.md). Package lsh's own defaults (96×3) suit ranking
// by the estimate.
const (
	DefaultBands = 80
	DefaultRows  = 2
)

// DefaultMinBands is the default of Config.MinBands: a user who shares
// fewer than three of the 80 bands with the query is seldom a neighbour
// (see DefaultBands), and scoring a candidate reads its item.
const DefaultMinBands = 3

// Validate reports the first bad value of c.
func (c Config) Validate() error {
	var delay, minBands error
	if c.Delay < 0 {
		delay = fmt.Errorf("similar: negative delay %s", c.Delay)
	}
	if c.MinBands < 0 {
		minBands = fmt.Errorf("similar: negative min bands %d", c.MinBands)
	}
	return errors.Join(c.MinHash.Validate(), c.Hyperplanes.Validate(), c.Limits.Validate(), delay, minBands)
}

// Index is the hashing of a Config; it is safe for concurrent use.
type Index struct {
	cfg Config
	mh  *lsh.MinHash
	hp  *lsh.Hyperplanes
	// cands are the queries' *lsh.Candidates, reused: their maps grow to
	// thousands of entries.
	cands sync.Pool
}

// New returns the Index of cfg, or cfg's Validate error.
func New(cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mh, err := lsh.NewMinHash(cfg.MinHash)
	if err != nil {
		return nil, err
	}
	hp, err := lsh.NewHyperplanes(cfg.Hyperplanes)
	if err != nil {
		return nil, err
	}
	cfg.MinHash, cfg.Hyperplanes = mh.Config(), hp.Config()
	if cfg.Limits.PerBucket == 0 {
		cfg.Limits.PerBucket = lsh.DefaultPerBucket // NB: a query reads one more
	}
	cfg.MinBands = cmp.Or(cfg.MinBands, DefaultMinBands)
	return &Index{cfg: cfg, mh: mh, hp: hp}, nil
}

// Dim is the dimension of the song vectors.
func (ix *Index) Dim() int { return ix.cfg.Hyperplanes.Dim }

// ItemKey appends the partition key of an item: stage 2 keeps the item in
// the partition this key routes to (murmur2, as any keyed record).
func ItemKey(dst []byte, k Kind, id int64) []byte {
	return state.AppendUint64(append(dst, Format, byte(k), 'i'), uint64(id))
}

// BucketKey appends the partition key of a bucket: stage 2 keeps its
// members in the partition this key routes to.
func BucketKey(dst []byte, k Kind, b lsh.Bucket) []byte {
	return b.AppendKey(append(dst, Format, byte(k), 'b'))
}

// buckets appends the buckets of a stored item.
func (ix *Index) buckets(k Kind, item []byte, dst []lsh.Bucket) ([]lsh.Bucket, error) {
	if k == Users {
		enc, _, err := ix.splitUser(item)
		if err != nil {
			return nil, err
		}
		sig, err := ix.mh.ParseSignature(enc)
		if err != nil {
			return nil, err
		}
		return ix.mh.Buckets(sig, dst), nil
	}
	v, err := ix.vector(item)
	if err != nil {
		return nil, err
	}
	return ix.hp.Buckets(v, dst)
}

// ErrCorrupt is wrapped by the errors about malformed records and stored
// values.
var ErrCorrupt = errors.New("similar: corrupt encoding")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
