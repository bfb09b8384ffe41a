// Package example is the smallest processor, the README's example: it
// counts listens per country (table 0x7e | country → 8-byte count).
package example

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

const format, table byte = 0x7e, 0x7e

// Spec is the processor's registry entry.
var Spec = processors.Spec{Name: "example", Formats: []byte{format}, Tables: []byte{table},
	Options: func() processors.Options { return &Options{} }}

// Options turn the processor on (--example).
type Options struct {
	On bool `json:"example" flag:"example" help:"count listens per country"`
}

func (o *Options) Enabled() bool                                        { return o.On }
func (o *Options) Validate() error                                      { return nil }
func (o *Options) New(env processors.Env) (processors.Processor, error) { return job{env}, nil }

type job struct{ env processors.Env }

func (j job) NewStage1(int32, *state.Store) (processors.Stage1, error) {
	head := func(dst []byte, _ int32, _ int, _ bool) []byte { return append(dst, format) }
	return &stage1{topology.NewPacker(j.env.Repartition, j.env.Partitions, head, 0), map[events.Country]uint64{}}, nil
}
func (j job) NewStage2(_ int32, s *state.Store) (processors.Stage2, error) {
	return &stage2{s, map[events.Country]uint64{}}, nil
}

// stage1 counts the interval's listens per country and sends each
// country's count to the stage-2 partition of the country.
type stage1 struct {
	pk *topology.Packer
	n  map[events.Country]uint64
}

func (s *stage1) Add(l *events.Listen) error { s.n[l.Country]++; return nil }
func (s *stage1) NextDue() time.Time         { return time.Time{} }
func (s *stage1) Prepare(out *topology.Output, _ bool) error {
	s.pk.Start(out)
	for c, n := range s.n {
		b := s.pk.To(s.pk.Partition(c[:]))
		*b = binary.AppendUvarint(append(*b, c[:]...), n)
	}
	s.pk.Flush(false)
	clear(s.n)
	return nil
}

// stage2 adds the counts to the store, one key per country.
type stage2 struct {
	s   *state.Store
	add map[events.Country]uint64
}

func (s *stage2) Process(rec *kgo.Record) error {
	add, b := map[events.Country]uint64{}, rec.Value[1:]
	for len(b) > 0 {
		n, w := binary.Uvarint(b[min(2, len(b)):])
		if len(b) < 3 || w <= 0 {
			return errors.New("example: malformed record")
		}
		add[events.Country(b[:2])] += n
		b = b[2+w:]
	}
	for c, n := range add {
		s.add[c] += n
	}
	return nil
}

func (s *stage2) Prepare(out *topology.Output) error {
	for c, n := range s.add {
		old, err := Count(s.s, c)
		if err != nil {
			return err
		}
		out.Put([]byte{table, c[0], c[1]}, binary.BigEndian.AppendUint64(nil, old+n))
	}
	clear(s.add)
	return nil
}

// Count reads the listens of country c from a stage-2 store (that of
// the partition of c[:]).
func Count(s *state.Store, c events.Country) (uint64, error) {
	v, found, err := s.Get(nil, []byte{table, c[0], c[1]})
	if err != nil || !found || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}
