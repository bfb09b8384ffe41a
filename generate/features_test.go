package generate

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
)

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// TestSongFeatures checks the song vectors: one per song with the drop's,
// of the dimension asked, the same for the same seed, and clustered: songs
// of one artist are much closer to each other than songs of artists of
// other clusters.
func TestSongFeatures(t *testing.T) {
	cfg := Config{Seed: 3, Songs: 2_000, Artists: 200, Users: 1_000, Events: 10_000, LiveDrop: true, LiveDropListeners: 100}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	vecs := map[int64][]float32{}
	for id, v := range g.SongFeatures(16) {
		if len(v) != 16 {
			t.Fatalf("song %d: %d values", id, len(v))
		}
		vecs[id] = slices.Clone(v)
	}
	if len(vecs) != cfg.Songs+1 {
		t.Fatalf("%d vectors, want %d songs and the drop's", len(vecs), cfg.Songs+1)
	}
	again, _ := New(cfg)
	for id, v := range again.SongFeatures(16) {
		if !slices.Equal(v, vecs[id]) {
			t.Fatalf("song %d: another vector for the same seed", id)
		}
	}
	// Songs of one artist share a cluster; over all pairs, same-artist
	// pairs are close (centre 1, spread 0.5: cos ≈ 0.8) and random pairs
	// mostly not (1 in 32 share a cluster).
	var same, other []float64
	for a := int64(1); a < 400; a++ {
		for b := a + 1; b < 400; b++ {
			c := cosine(vecs[a], vecs[b])
			if g.cat.artistOfSong(a) == g.cat.artistOfSong(b) {
				same = append(same, c)
			} else {
				other = append(other, c)
			}
		}
	}
	if len(same) == 0 || mean(same) < 0.7 || mean(other) > 0.15 {
		t.Fatalf("mean cosine of same-artist pairs %.2f (%d), of others %.2f: not clustered", mean(same), len(same), mean(other))
	}
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func TestAppendFeature(t *testing.T) {
	b := AppendFeature(nil, 7, []float32{0.12345678, -0.5, 3})
	if string(b) != `{"song_id":7,"vector":[0.12346,-0.5,3]}` {
		t.Fatalf("%s", b)
	}
	var rec struct {
		SongID int64     `json:"song_id"`
		Vector []float32 `json:"vector"`
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.SongID != 7 || len(rec.Vector) != 3 {
		t.Fatalf("%s does not decode: %v", b, err)
	}
}
