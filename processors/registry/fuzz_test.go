package registry

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// FuzzStage2Records hands any bytes, behind each registered processor's
// format byte, to that processor's stage-2 part (with every processor
// on): the rollup, live, fan-zone and similarity delta decoders. A
// record may be rejected; none may panic, in Process or in the Prepare
// after an accepted one.
func FuzzStage2Records(f *testing.F) {
	for _, seed := range [][]byte{{}, {0}, {1, 2, 3}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}} {
		for i := range 8 {
			f.Add(byte(i), seed)
		}
	}
	cfg := NewConfig()
	raw, err := json.Marshal(map[string]bool{"fan_zones": true, "similar": true, "example": true})
	if err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		f.Fatal(err)
	}
	env := processors.Env{Version: "v1", Repartition: "r", Partitions: 4,
		Topic: func(s string) string { return "kappa.v1." + s }, Logger: slog.New(slog.DiscardHandler),
		MeterProvider: noop.NewMeterProvider()}
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	var formats []byte
	var parts []processors.Stage2
	for i := range cfg.Specs() {
		o := cfg.Options(i)
		if !o.Enabled() {
			continue
		}
		p, err := o.New(env)
		if err != nil {
			f.Fatal(err)
		}
		part, err := p.NewStage2(0, s)
		if err != nil {
			f.Fatal(err)
		}
		for _, fm := range cfg.Specs()[i].Formats {
			formats = append(formats, fm)
			parts = append(parts, part)
		}
	}
	if len(parts) < 4 {
		f.Fatalf("%d stage-2 formats: the processors are not all on", len(parts))
	}
	f.Fuzz(func(t *testing.T, which byte, body []byte) {
		i := int(which) % len(parts)
		rec := &kgo.Record{Topic: "r", Value: append([]byte{formats[i]}, body...)}
		if err := parts[i].Process(rec); err != nil {
			return
		}
		var out topology.Output
		if err := parts[i].Prepare(&out); err != nil {
			t.Logf("prepare after an accepted record: %v", err)
		}
	})
}
