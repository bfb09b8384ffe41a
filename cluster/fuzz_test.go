package cluster

import "testing"

// FuzzDecodeRecord: any directory record decodes or is rejected, never
// panics, and an accepted one has an address.
func FuzzDecodeRecord(f *testing.F) {
	f.Add("a", []byte(`{"instance_id":"a","http":"http://10.0.0.1:8080","started":"2026-12-01T10:00:00Z"}`))
	f.Add("a", []byte(`{"instance_id":"a","http":"javascript:alert(1)"}`))
	f.Add("b", []byte(`{"instance_id":"a"}`))
	f.Add("", []byte(`[`))
	f.Fuzz(func(t *testing.T, id string, value []byte) {
		inst, err := decodeRecord(id, value)
		if err == nil && inst.url == "" {
			t.Fatalf("accepted %q for %q without an address", value, id)
		}
	})
}
