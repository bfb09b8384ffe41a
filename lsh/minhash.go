package lsh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Defaults of MinHashConfig; see the package documentation for the S-curve
// they give.
const (
	DefaultBands = 96
	DefaultRows  = 3
)

// Limits on MinHashConfig.
const (
	MaxBands = 1024
	MaxRows  = 64
)

// emptySlot is the value of every slot of an empty signature. Add never
// stores it (a row hash equal to it is lowered by one), so a signature is
// either entirely empty or has no empty slot.
const emptySlot = math.MaxUint32

// MinHashConfig configures a MinHash. The zero value of Bands and Rows means
// the default. Bands, Rows and Seed are part of the stored state: the same
// values compute the same signatures and bucket ids on every instance and in
// every replay; changing any of them requires a new topology version.
type MinHashConfig struct {
	// Bands is the number of LSH bands b: the number of buckets a user is
	// in, so the number of bucket entries per user. Default DefaultBands
	// (96), at most MaxBands.
	Bands int
	// Rows is the number of signature rows r per band. Default DefaultRows
	// (3), at most MaxRows. The signature has Bands×Rows slots.
	Rows int
	// Seed selects the hash functions. Any value; default 0.
	Seed uint64
}

func (c MinHashConfig) withDefaults() MinHashConfig {
	if c.Bands == 0 {
		c.Bands = DefaultBands
	}
	if c.Rows == 0 {
		c.Rows = DefaultRows
	}
	return c
}

// Validate reports the first bad value of c, after applying defaults to its
// zero fields. Errors are prefixed "lsh: ".
func (c MinHashConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Bands < 1 || c.Bands > MaxBands:
		return fmt.Errorf("lsh: Bands %d out of range 1…%d", c.Bands, MaxBands)
	case c.Rows < 1 || c.Rows > MaxRows:
		return fmt.Errorf("lsh: Rows %d out of range 1…%d", c.Rows, MaxRows)
	}
	return nil
}

// Threshold returns (1/b)^(1/r), the Jaccard similarity near which the
// S-curve of c rises most steeply (defaults applied).
func (c MinHashConfig) Threshold() float64 {
	c = c.withDefaults()
	return math.Pow(1/float64(c.Bands), 1/float64(c.Rows))
}

// Probability returns 1 − (1 − s^r)^b: the probability that two sets of
// Jaccard similarity s share at least one bucket, so that each is a
// candidate of the other (defaults applied).
func (c MinHashConfig) Probability(s float64) float64 {
	c = c.withDefaults()
	return 1 - math.Pow(1-math.Pow(s, float64(c.Rows)), float64(c.Bands))
}

// MinHash computes MinHash signatures of sets of int64 ids (a user's
// artists) and their LSH buckets. It is immutable and safe for concurrent
// use.
type MinHash struct {
	cfg MinHashConfig
	k   int
	// seeds[j] derives the row hashes of slots 2j (high half) and 2j+1
	// (low half); one 64-bit mix gives two 32-bit hashes.
	seeds []uint64
}

// NewMinHash returns a MinHash for cfg, or the error of cfg.Validate.
func NewMinHash(cfg MinHashConfig) (*MinHash, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &MinHash{cfg: cfg, k: cfg.Bands * cfg.Rows}
	rng := splitmix{state: cfg.Seed ^ saltRows}
	m.seeds = make([]uint64, (m.k+1)/2)
	for j := range m.seeds {
		m.seeds[j] = rng.next()
	}
	return m, nil
}

// Config returns the configuration of m, defaults applied.
func (m *MinHash) Config() MinHashConfig { return m.cfg }

// Len returns the number of slots of a signature: Bands×Rows.
func (m *MinHash) Len() int { return m.k }

// Signature is a MinHash signature: slot i holds the minimum over the set of
// the i-th hash function (32 bits; two sets agree in a slot with probability
// their Jaccard similarity). It belongs to the MinHash that made it; mixing
// signatures of different configurations gives meaningless results.
type Signature []uint32

// IsEmpty reports whether s is the signature of the empty set.
func (s Signature) IsEmpty() bool {
	// INVARIANT: a signature is either entirely empty or has no empty slot.
	return len(s) == 0 || s[0] == emptySlot
}

// Empty returns a new signature of the empty set.
func (m *MinHash) Empty() Signature {
	s := make(Signature, m.k)
	for i := range s {
		s[i] = emptySlot
	}
	return s
}

// Signature returns the signature of the set of ids; duplicates are
// ignored and order does not matter.
func (m *MinHash) Signature(ids []int64) Signature {
	s := m.Empty()
	for _, id := range ids {
		m.Add(s, id)
	}
	return s
}

// Add adds id to the set sig summarises, updating sig in place in O(Len),
// and reports whether sig changed. Adding an id already in the set never
// changes sig; adding a new one changes it with probability about
// Len/(n+1) for a set of n ids (it changes each slot with probability
// 1/(n+1)). Sets only grow: to remove an id, recompute the signature from
// the remaining set. Add panics if len(sig) != m.Len().
func (m *MinHash) Add(sig Signature, id int64) (changed bool) {
	if len(sig) != m.k {
		panic(fmt.Sprintf("lsh: signature has %d slots, want %d", len(sig), m.k))
	}
	g := mix64(uint64(id))
	pairs := m.k / 2
	s := sig[:2*pairs]
	for j, seed := range m.seeds[:pairs] {
		w := mix64(g ^ seed)
		hi, lo := uint32(w>>32), uint32(w)
		if hi == emptySlot {
			hi--
		}
		if lo == emptySlot {
			lo--
		}
		if hi < s[2*j] {
			s[2*j] = hi
			changed = true
		}
		if lo < s[2*j+1] {
			s[2*j+1] = lo
			changed = true
		}
	}
	if m.k%2 == 1 {
		hi := uint32(mix64(g^m.seeds[pairs]) >> 32)
		if hi == emptySlot {
			hi--
		}
		if hi < sig[m.k-1] {
			sig[m.k-1] = hi
			changed = true
		}
	}
	return changed
}

// Buckets appends the Bands buckets of sig to dst, in band order, and
// returns the extended slice: bucket i has Table i and the hash of the Rows
// slots of band i. An empty signature has no buckets (a user with no
// artists is in no bucket), so nothing is appended. Buckets panics if
// len(sig) != m.Len().
func (m *MinHash) Buckets(sig Signature, dst []Bucket) []Bucket {
	if len(sig) != m.k {
		panic(fmt.Sprintf("lsh: signature has %d slots, want %d", len(sig), m.k))
	}
	if sig.IsEmpty() {
		return dst
	}
	r := m.cfg.Rows
	for band := range m.cfg.Bands {
		dst = append(dst, Bucket{Table: uint16(band), Hash: bandHash(band, sig[band*r:(band+1)*r])})
	}
	return dst
}

// bandHash hashes the slots of one band, two slots per mix.
func bandHash(band int, rows []uint32) uint64 {
	h := mix64(uint64(band) ^ saltBand)
	for len(rows) >= 2 {
		h = mix64(h ^ (uint64(rows[0])<<32 | uint64(rows[1])))
		rows = rows[2:]
	}
	if len(rows) == 1 {
		h = mix64(h ^ uint64(rows[0]))
	}
	return h
}

// Jaccard estimates the Jaccard similarity of the sets of two signatures of
// the same MinHash: the fraction of slots in which they agree. Its standard
// error is √(J(1−J)/Len) (0.029 at J = 0.5 with the default 288 slots). It
// returns 0 if either set is empty, and panics if the lengths differ.
func Jaccard(a, b Signature) float64 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("lsh: Jaccard of signatures of %d and %d slots", len(a), len(b)))
	}
	if a.IsEmpty() || b.IsEmpty() {
		return 0
	}
	b = b[:len(a)]
	// Four counters: about 30% faster than one (re-ranking is its hot loop).
	s0, s1, s2, s3 := 0, 0, 0, 0
	i := 0
	for ; i+4 <= len(a); i += 4 {
		if a[i] == b[i] {
			s0++
		}
		if a[i+1] == b[i+1] {
			s1++
		}
		if a[i+2] == b[i+2] {
			s2++
		}
		if a[i+3] == b[i+3] {
			s3++
		}
	}
	for ; i < len(a); i++ {
		if a[i] == b[i] {
			s0++
		}
	}
	return float64(s0+s1+s2+s3) / float64(len(a))
}

// AppendBinary appends the encoding of s to b: each slot as 4 bytes, little
// endian. It never fails; it implements encoding.BinaryAppender.
func (s Signature) AppendBinary(b []byte) ([]byte, error) {
	for _, v := range s {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b, nil
}

// ErrSignature is wrapped by the errors of ParseSignature.
var ErrSignature = errors.New("lsh: bad signature")

// ParseSignature decodes a signature of m written by AppendBinary. The
// result does not alias b.
func (m *MinHash) ParseSignature(b []byte) (Signature, error) {
	if len(b) != 4*m.k {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrSignature, len(b), 4*m.k)
	}
	s := make(Signature, m.k)
	empty := 0
	for i := range s {
		s[i] = binary.LittleEndian.Uint32(b[4*i:])
		if s[i] == emptySlot {
			empty++
		}
	}
	if empty != 0 && empty != m.k {
		return nil, fmt.Errorf("%w: %d of %d slots empty", ErrSignature, empty, m.k)
	}
	return s, nil
}
