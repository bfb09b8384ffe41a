package events

import (
	"math"
	"strconv"
	"testing"
)

// FuzzDecodeFeature: any song-features record decodes or is rejected
// with a *FeatureError, never panics, and an accepted one has a positive
// id, the key's, and dim finite values.
func FuzzDecodeFeature(f *testing.F) {
	f.Add([]byte("7"), []byte(`{"song_id":7,"vector":[0.1,-0.5,1]}`))
	f.Add([]byte(nil), []byte(`{"song_id":1e400,"vector":[1,2,3]}`))
	f.Add([]byte("x"), []byte(`{"vector":[NaN]}`))
	f.Add([]byte(""), []byte(`[`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		feat, err := DecodeFeature(key, value, 3)
		if err != nil {
			if _, ok := err.(*FeatureError); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if feat.SongID <= 0 || len(feat.Vector) != 3 || (len(key) > 0 && string(key) != strconv.FormatInt(feat.SongID, 10)) {
			t.Fatalf("accepted %+v for key %q", feat, key)
		}
		for _, v := range feat.Vector {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("accepted a non-finite value: %+v", feat)
			}
		}
	})
}
