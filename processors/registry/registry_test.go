package registry

import (
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"slices"
	"testing"
)

// TestDistinct fails when two processors share a record format, a store
// table, a configuration field or a flag: each must be one processor's.
func TestDistinct(t *testing.T) {
	formats, tables, fields, flags := map[byte]string{}, map[byte]string{0x00: "state", 0x01: "state"}, map[string]string{}, map[string]string{}
	claim := func(what string, m map[byte]string, b byte, name string) {
		if other, ok := m[b]; ok {
			t.Errorf("%s %#x of %s is %s's too", what, b, name, other)
		}
		m[b] = name
	}
	var earlier []string
	for _, s := range Specs() {
		if (len(s.Formats) == 0 && s.Follows == "") || len(s.Tables) == 0 {
			t.Errorf("%s declares no format (and follows no processor) or no table", s.Name)
		}
		if s.Follows != "" && !slices.Contains(earlier, s.Follows) {
			t.Errorf("%s follows %q, which is not an earlier processor of the registry", s.Name, s.Follows)
		}
		earlier = append(earlier, s.Name)
		for _, f := range s.Formats {
			claim("format", formats, f, s.Name)
		}
		for _, tb := range s.Tables {
			claim("table", tables, tb, s.Name)
		}
		o := s.Options()
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: options are not a JSON object: %s", s.Name, b)
		}
		for k := range m {
			if other, ok := fields[k]; ok {
				t.Errorf("configuration field %q of %s is %s's too", k, s.Name, other)
			}
			fields[k] = s.Name
		}
		v := reflect.ValueOf(o).Elem()
		for i := range v.NumField() {
			if f := v.Type().Field(i).Tag.Get("flag"); f != "" {
				if other, ok := flags[f]; ok {
					t.Errorf("flag --%s of %s is %s's too", f, s.Name, other)
				}
				flags[f] = s.Name
			}
		}
		if err := o.Validate(); err != nil {
			t.Errorf("%s: the defaults are invalid: %v", s.Name, err)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if names := NewConfig().Flags(fs); len(names) != len(flags) {
		t.Errorf("Flags declared %d flags, the options tag %d", len(names), len(flags))
	}
}
