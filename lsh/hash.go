package lsh

// The hashing below is part of the stored format: bucket ids and persisted
// signatures depend on it bit for bit. It uses only integer arithmetic, so
// every platform and Go version computes the same values. Changing any of it
// requires a new topology version (a replay), like changing a Seed.

const (
	// golden is 2^64/φ, the splitmix64 increment.
	golden = 0x9e3779b97f4a7c15
	// Salts keep the streams derived from one seed apart.
	saltRows   = 0x6a09e667f3bcc908 // MinHash row hash seeds
	saltBand   = 0xbb67ae8584caa73b // MinHash band hashes
	saltPlanes = 0x3c6ef372fe94f82b // hyperplane coefficients
)

// mix64 is the splitmix64 finaliser (Stafford's variant 13): a bijection of
// uint64 with full avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// splitmix is the splitmix64 generator: a seeded, portable stream of
// pseudo-random uint64s.
type splitmix struct{ state uint64 }

func (s *splitmix) next() uint64 {
	s.state += golden
	return mix64(s.state)
}
