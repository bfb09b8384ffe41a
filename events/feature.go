package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// SongFeature is one record of the song-features topic (CONTRACT.md): a
// song's feature vector. The latest vector of a song wins.
type SongFeature struct {
	SongID int64
	Vector []float32
}

// FeatureError is the error of DecodeFeature: why a song-features record
// is not valid.
type FeatureError struct{ Reason string }

// Error returns "events: invalid song feature: " followed by e.Reason.
func (e *FeatureError) Error() string { return "events: invalid song feature: " + e.Reason }

// DecodeFeature decodes the song-features record with key and value:
// {"song_id": 7, "vector": [0.12, -0.5, …]} with exactly dim finite values
// (each within float32's range) and a positive song_id; unknown fields
// are ignored. A key, when present, must be the song_id in decimal. On
// failure it returns a *FeatureError.
func DecodeFeature(key, value []byte, dim int) (SongFeature, error) {
	var j struct {
		SongID *json.Number `json:"song_id"`
		Vector *[]float64   `json:"vector"`
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&j); err != nil {
		return SongFeature{}, &FeatureError{Reason: "not a JSON object with song_id and vector: " + err.Error()}
	}
	if dec.More() {
		return SongFeature{}, &FeatureError{Reason: "trailing data after the object"}
	}
	if j.SongID == nil {
		return SongFeature{}, &FeatureError{Reason: "song_id: missing"}
	}
	id, err := strconv.ParseInt(j.SongID.String(), 10, 64)
	if err != nil || id < 1 {
		return SongFeature{}, &FeatureError{Reason: "song_id: want an integer 1 … 2^63-1"}
	}
	if len(key) > 0 && string(key) != strconv.FormatInt(id, 10) {
		return SongFeature{}, &FeatureError{Reason: fmt.Sprintf("key %q is not the song_id %d", key, id)}
	}
	if j.Vector == nil {
		return SongFeature{}, &FeatureError{Reason: "vector: missing"}
	}
	if len(*j.Vector) != dim {
		return SongFeature{}, &FeatureError{Reason: fmt.Sprintf("vector: %d values, want %d (--feature-dim)", len(*j.Vector), dim)}
	}
	f := SongFeature{SongID: id, Vector: make([]float32, dim)}
	for i, x := range *j.Vector {
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxFloat32 {
			return SongFeature{}, &FeatureError{Reason: fmt.Sprintf("vector[%d]: not a finite float32", i)}
		}
		f.Vector[i] = float32(x)
	}
	return f, nil
}

// ErrFeatureVector is wrapped by the errors of ParseVector.
var ErrFeatureVector = errors.New("events: bad stored vector")

// AppendVector appends v as 4-byte little-endian IEEE 754 values: the
// stored form of a feature vector.
func AppendVector(dst []byte, v []float32) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

// ParseVector decodes a vector of dim values written by AppendVector into
// dst (grown as needed) and returns it.
func ParseVector(dst []float32, b []byte, dim int) ([]float32, error) {
	if len(b) != 4*dim {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrFeatureVector, len(b), 4*dim)
	}
	dst = dst[:0]
	for i := 0; i < len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst, nil
}
