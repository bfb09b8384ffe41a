package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/kappa-stream/kappa/processors/similar"
)

// Topic names of CONTRACT.md.
const (
	topicListens = "listens"
	topicDLQ     = "listens.dlq"
	// topicInstances is where instances advertise their HTTP address.
	topicInstances = "kappa.instances"
	// topicControl holds the versions and the serving pointer.
	topicControl = "kappa.control"
	// topicFeatures holds the songs' feature vectors (CONTRACT.md).
	topicFeatures = similar.FeaturesTopic
	// topicFeaturesDLQ receives the song-features records that are not
	// valid, with the reason.
	topicFeaturesDLQ = similar.FeaturesDLQ
)

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// telemetry is the process's OpenTelemetry meter provider exported in the
// Prometheus text format, plus Go runtime and process collectors.
type telemetry struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

func newTelemetry() (*telemetry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	return &telemetry{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// kafkaHooks instruments a franz-go client with the provider.
func (t *telemetry) kafkaHooks() kgo.Opt {
	k := kotel.NewKotel(kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(t.provider))))
	return kgo.WithHooks(k.Hooks()...)
}

// producerOpts are the settings of kappa's listen producers: Java-compatible
// murmur2 partitioning by key (franz-go's default), idempotent, no
// compression (the CPU is the bottleneck on small machines; set it on the
// topic for a real cluster if the network is); a record not acknowledged
// within two minutes fails instead of retrying forever. sec are the
// security options (kafkasec).
func producerOpts(brokers []string, sec []kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topicListens),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.RecordDeliveryTimeout(2 * time.Minute),
	}, sec...)
}
