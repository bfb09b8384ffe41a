package catalog

import (
	"errors"
	"testing"
)

// FuzzDecode: any feed record decodes or is rejected with ErrMalformed,
// and any table value decodes or is rejected; neither panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"kind":"song","id":7,"title":"Hello","artist_id":3}`))
	f.Add([]byte(`{"kind":"artist","id":-1}`))
	f.Add([]byte(`{"kind":"song","id":7,"extra":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, value []byte) {
		if _, err := Decode(value); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		_, _ = DecodeEntity(value)
	})
}
