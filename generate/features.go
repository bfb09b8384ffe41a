package generate

import (
	"iter"
	"math/rand/v2"
	"strconv"
)

// FeatureClusters is the number of latent clusters of song features
// (genres): every artist belongs to one, its own sound lies near the
// cluster's centre, and its songs near its sound, so that a song's nearest
// neighbours are its artist's other songs (cosine ≈ 0.95), then the rest
// of its genre (≈ 0.8).
const FeatureClusters = 32

// Spreads, per dimension, against 1 for the centres: of an artist's sound
// around its cluster's centre, and of a song around its artist's sound.
const (
	artistSpread = 0.45
	songSpread   = 0.25
)

// SongFeatures yields the feature vector of every song of the generator
// (the live drop's too), dim values each, by song id: the song-features
// topic's records. A song's vector depends only on the seed, its id and
// its artist, not on the order the vectors are drawn in.
func (g *Generator) SongFeatures(dim int) iter.Seq2[int64, []float32] {
	salt := mix(uint64(g.cfg.Seed) ^ 0x6665617475726573)
	centres := make([][]float64, FeatureClusters)
	r := rand.New(rand.NewPCG(salt, 1))
	for c := range centres {
		centres[c] = make([]float64, dim)
		for i := range centres[c] {
			centres[c][i] = r.NormFloat64()
		}
	}
	songs := int64(g.cfg.Songs)
	if g.hasDrop {
		songs++
	}
	return func(yield func(int64, []float32) bool) {
		v := make([]float32, dim)
		sound := make([]float64, dim)
		for id := int64(1); id <= songs; id++ {
			artist := g.drop.ArtistID
			if id <= int64(g.cfg.Songs) {
				artist = g.cat.artistOfSong(id)
			}
			centre := centres[mix(salt^uint64(artist))%FeatureClusters]
			ar := rand.New(rand.NewPCG(salt^0x736f756e64, uint64(artist)))
			for i := range sound {
				sound[i] = centre[i] + artistSpread*ar.NormFloat64()
			}
			sr := rand.New(rand.NewPCG(salt, uint64(id)))
			for i := range v {
				v[i] = float32(sound[i] + songSpread*sr.NormFloat64())
			}
			if !yield(id, v) {
				return
			}
		}
	}
}

// AppendFeature appends the JSON of a song-features record:
// {"song_id":7,"vector":[0.1234,-0.5,…]}.
func AppendFeature(dst []byte, song int64, v []float32) []byte {
	dst = append(dst, `{"song_id":`...)
	dst = strconv.AppendInt(dst, song, 10)
	dst = append(dst, `,"vector":[`...)
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendFloat(dst, float64(x), 'g', 5, 32)
	}
	return append(dst, "]}"...)
}
