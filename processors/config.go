package processors

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Config is the processor configuration of a topology version: the
// Options of every registered processor, in registry order. The control
// topic keeps it as one flat JSON object (every processor's json fields
// side by side, every default spelled out), which is also how versions
// declared before this type existed wrote it; a field a version lacks
// takes its default.
type Config struct {
	specs []Spec
	opts  []Options
}

// NewConfig returns the default configuration of the processors specs.
func NewConfig(specs []Spec) Config {
	c := Config{specs: specs, opts: make([]Options, len(specs))}
	for i, s := range specs {
		c.opts[i] = s.Options()
	}
	return c
}

// Specs are the processors the configuration is for.
func (c Config) Specs() []Spec { return c.specs }

// Options are processor i's options (registry order).
func (c Config) Options(i int) Options { return c.opts[i] }

// Lookup returns the options of the processor named name.
func (c Config) Lookup(name string) (Options, bool) {
	for i, s := range c.specs {
		if s.Name == name {
			return c.opts[i], true
		}
	}
	return nil, false
}

// Duration is a time.Duration that reads and writes itself as text
// ("5s"), in flags and in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// field is one flag-bearing field of an Options struct.
type field struct {
	flag, help string
	v          reflect.Value // addressable
}

// fields lists the fields of o that have a flag tag.
func fields(o Options) []field {
	v := reflect.ValueOf(o).Elem()
	var out []field
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if name := f.Tag.Get("flag"); name != "" {
			out = append(out, field{flag: name, help: f.Tag.Get("help"), v: v.Field(i)})
		}
	}
	return out
}

// Flags declares a flag for every flag-tagged field of every processor's
// options, writing into c, and returns their names.
func (c Config) Flags(fs *flag.FlagSet) []string {
	var names []string
	for _, o := range c.opts {
		for _, f := range fields(o) {
			names = append(names, f.flag)
			switch p := f.v.Addr().Interface().(type) {
			case *bool:
				fs.BoolVar(p, f.flag, *p, f.help)
			case *int:
				fs.IntVar(p, f.flag, *p, f.help)
			case encoding.TextUnmarshaler:
				fs.TextVar(p, f.flag, f.v.Interface().(encoding.TextMarshaler), f.help)
			default:
				panic(fmt.Sprintf("processors: flag %s: field of type %s has no flag form", f.flag, f.v.Type()))
			}
		}
	}
	return names
}

// FlagNames are the names of the flags Flags declares.
func (c Config) FlagNames() []string {
	var names []string
	for _, o := range c.opts {
		for _, f := range fields(o) {
			names = append(names, f.flag)
		}
	}
	return names
}

// Overlay copies into c the settings of the flags named in set from
// from (a configuration of the same processors): a replay's new version
// is the serving one's configuration with the flags given changed.
func (c Config) Overlay(from Config, set []string) {
	for i, o := range c.opts {
		src := fields(from.opts[i])
		for j, f := range fields(o) {
			if slices.Contains(set, f.flag) {
				f.v.Set(src[j].v)
			}
		}
	}
}

// Validate checks every processor's options; an error names the
// processor and its flags.
func (c Config) Validate() error {
	var errs []error
	for i, o := range c.opts {
		if err := o.Validate(); err != nil {
			var flags []string
			for _, f := range fields(o) {
				flags = append(flags, "--"+f.flag)
			}
			errs = append(errs, fmt.Errorf("%s (%s): %w", c.specs[i].Name, strings.Join(flags, ", "), err))
		}
	}
	return errors.Join(errs...)
}

// MarshalJSON writes the flat object of every processor's fields.
func (c Config) MarshalJSON() ([]byte, error) {
	merged := map[string]json.RawMessage{}
	for i, o := range c.opts {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("processors: %s options: %w", c.specs[i].Name, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("processors: %s options are not a JSON object: %w", c.specs[i].Name, err)
		}
		for k, v := range m {
			if _, dup := merged[k]; dup {
				return nil, fmt.Errorf("processors: %s options: field %q is another processor's", c.specs[i].Name, k)
			}
			merged[k] = v
		}
	}
	return json.Marshal(merged)
}

// UnmarshalJSON reads a flat object onto the defaults and validates it.
// c must have been made by NewConfig (it says which processors).
func (c *Config) UnmarshalJSON(b []byte) error {
	if len(c.specs) == 0 {
		return errors.New("processors: a configuration must come from NewConfig before it is read")
	}
	out := NewConfig(c.specs)
	for i, o := range out.opts {
		d := json.NewDecoder(bytes.NewReader(b))
		if err := d.Decode(o); err != nil {
			return fmt.Errorf("%s: %w", c.specs[i].Name, err)
		}
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*c = out
	return nil
}

// Describe is the configuration in one line, for logs and status.
func (c Config) Describe() string {
	b, err := c.MarshalJSON()
	if err != nil {
		return err.Error()
	}
	return string(b)
}
