package control

import (
	"reflect"
	"testing"
)

// FuzzApply: any control record is applied or rejected, never panics,
// and a rejected one leaves the state as it was.
func FuzzApply(f *testing.F) {
	f.Add([]byte("serving"), []byte(`{"version":"v2"}`))
	f.Add([]byte("version/v1"), []byte(`{"name":"v1","from":"earliest","config":{"similar":true}}`))
	f.Add([]byte("version/v1"), []byte(nil))
	f.Add([]byte("version/../x"), []byte(`{"name":"../x"}`))
	f.Add([]byte("?"), []byte(`[`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := State{Versions: map[string]Version{"v1": {Name: "v1"}}, Serving: Serving{Version: "v1"}}
		before := s.clone()
		if err := s.apply(key, value); err != nil && !reflect.DeepEqual(s, before) {
			t.Fatalf("rejected record %q=%q changed the state: %+v", key, value, s)
		}
	})
}
