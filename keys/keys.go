// Package keys is kappa's API keys: random bearer tokens with a role,
// stored only as SHA-256 hashes (with a name, the role, when they were
// created and revoked) in a compacted topic of one partition
// (kappa.keys) that every instance follows, so a key created or revoked
// anywhere takes effect on every instance within one fetch.
//
// A key reads kappa_<id>_<secret>: id is 16 hexadecimal digits that name
// the key in listings and revocations; secret is 32 random bytes in
// unpadded base64url. Only the hash of the whole token leaves the
// process that creates it; verification compares hashes in constant
// time.
//
// One kind of record, latest per key wins:
//
//	key "key/<id>"  value: Key as JSON
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Topic is the default keys topic.
const Topic = "kappa.keys"

// TopicPartitions is the partition count the keys topic must have: one,
// so every instance reads the changes in the order they were written.
const TopicPartitions = 1

// TopicConfigs are the configs the keys topic is created with:
// compaction keeps the latest record of every key forever.
func TopicConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "compact"}
}

// Role is what a key may reach.
type Role string

// The roles. Admin reaches everything a reader does and also ingest,
// status, metrics, profiles and the per-user answers; Reader the exact
// reads and the UI; Partner only the partner API.
const (
	Admin   Role = "admin"
	Reader  Role = "reader"
	Partner Role = "partner"
)

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Admin, Reader, Partner:
		return r, nil
	}
	return "", fmt.Errorf("keys: role %q: want admin, reader or partner", s)
}

// Key is what the keys topic holds of one key: never the token.
type Key struct {
	// ID names the key; it is the token's middle part.
	ID string `json:"id"`
	// Name is the operator's label (may be empty).
	Name string `json:"name,omitempty"`
	Role Role   `json:"role"`
	// Hash is the hexadecimal SHA-256 of the whole token.
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	// Revoked is when the key was revoked; nil while it works.
	Revoked *time.Time `json:"revoked,omitempty"`
	// EpsilonBudget is the privacy budget (ε) of a partner key: what its
	// answers of the partner API may spend in BudgetWindow; 0 for other
	// roles.
	EpsilonBudget float64 `json:"epsilon_budget,omitempty"`
	// BudgetWindow is the sliding window of EpsilonBudget; 0: the budget
	// is for the key's lifetime (spent for good once used up).
	BudgetWindow time.Duration `json:"budget_window,omitempty"`
}

// Active reports whether the key works (is not revoked).
func (k Key) Active() bool { return k.Revoked == nil }

// Errors of Verify.
var (
	// ErrUnknown is a token that is malformed or no key's.
	ErrUnknown = errors.New("keys: unknown key")
	// ErrRevoked is a revoked key's token.
	ErrRevoked = errors.New("keys: revoked key")
)

const (
	tokenPrefix = "kappa_"
	idBytes     = 8
	secretBytes = 32
	keyPrefix   = "key/"
)

var (
	tokenRE = regexp.MustCompile(`^kappa_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$`)
	idRE    = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// New draws a new key with role and name, created at now: the token to
// hand to its user once, and the Key to store.
func New(role Role, name string, now time.Time) (token string, k Key, err error) {
	if _, err := ParseRole(string(role)); err != nil {
		return "", Key{}, err
	}
	if len(name) > 200 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", Key{}, errors.New("keys: a name has at most 200 bytes and no control characters")
	}
	b := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Key{}, fmt.Errorf("keys: random: %w", err)
	}
	id := hex.EncodeToString(b[:idBytes])
	token = tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[idBytes:])
	return token, Key{ID: id, Name: name, Role: role, Hash: hashToken(token), Created: now.UTC()}, nil
}

// ValidID reports whether id is a key id (16 hexadecimal digits).
func ValidID(id string) bool { return idRE.MatchString(id) }

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// verify checks token against the keys by id.
func verify(byID map[string]Key, token string) (Key, error) {
	m := tokenRE.FindStringSubmatch(token)
	if m == nil {
		return Key{}, ErrUnknown
	}
	k, ok := byID[m[1]]
	if !ok {
		return Key{}, ErrUnknown
	}
	got := sha256.Sum256([]byte(token))
	want, err := hex.DecodeString(k.Hash)
	if err != nil || subtle.ConstantTimeCompare(got[:], want) != 1 {
		return Key{}, ErrUnknown
	}
	if !k.Active() {
		return Key{}, ErrRevoked
	}
	return k, nil
}

func encode(k Key) (key, value []byte, err error) {
	value, err = json.Marshal(k)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: encode %s: %w", k.ID, err)
	}
	return []byte(keyPrefix + k.ID), value, nil
}

// apply reads one record of the topic into byID.
func apply(byID map[string]Key, key, value []byte) error {
	id, ok := strings.CutPrefix(string(key), keyPrefix)
	if !ok || !ValidID(id) {
		return fmt.Errorf("keys: record key %q: want key/<id>", key)
	}
	if value == nil {
		delete(byID, id)
		return nil
	}
	var k Key
	if err := json.Unmarshal(value, &k); err != nil {
		return fmt.Errorf("keys: record %s: %w", key, err)
	}
	if _, err := ParseRole(string(k.Role)); err != nil || k.ID != id || len(k.Hash) != 2*sha256.Size {
		return fmt.Errorf("keys: record %s: bad id, role or hash", key)
	}
	byID[id] = k
	return nil
}
