package generate

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string // substring; "" = valid
	}{
		{"zero value", Config{}, ""},
		{"explicit defaults", Config{Seed: 1, Users: DefaultUsers, Artists: DefaultArtists, Songs: DefaultSongs, Start: DefaultStart, Span: DefaultSpan, Events: DefaultEvents, LiveDropListeners: DefaultLiveDropListeners}, ""},
		{"live drop", Config{LiveDrop: true}, ""},
		{"malformed 1", Config{MalformedRate: 1}, ""},
		{"negative users", Config{Users: -1}, "Users"},
		{"too many users", Config{Users: MaxUsers + 1}, "Users"},
		{"negative artists", Config{Artists: -5}, "Artists"},
		{"artists exceed songs", Config{Artists: 11, Songs: 10}, "exceeds Songs"},
		{"too many songs", Config{Songs: MaxSongs + 1}, "Songs"},
		{"negative events", Config{Events: -1}, "Events"},
		{"before the epoch", Config{Start: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}, "epoch"},
		{"negative span", Config{Span: -time.Second}, "Span"},
		{"sub-ms span", Config{Span: time.Microsecond}, "Span"},
		{"too far", Config{Start: time.Date(8999, 12, 1, 0, 0, 0, 0, time.UTC), Span: 365 * 24 * time.Hour}, "year"},
		{"negative rate", Config{MalformedRate: -0.1}, "MalformedRate"},
		{"rate above 1", Config{MalformedRate: 1.5}, "MalformedRate"},
		{"NaN rate", Config{MalformedRate: math.NaN()}, "MalformedRate"},
		{"negative listeners", Config{LiveDropListeners: -1}, "LiveDropListeners"},
		{"drop needs span", Config{LiveDrop: true, Span: 2 * time.Minute}, "live drop"},
		{"short span without drop", Config{Span: 2 * time.Minute}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := New(tt.cfg)
			if tt.err == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, New = %v; want no error", err, newErr)
				}
				return
			}
			if err == nil || newErr == nil {
				t.Fatalf("Validate = %v, New = %v; want %q", err, newErr, tt.err)
			}
			if !strings.HasPrefix(err.Error(), "generate: ") || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Validate = %q, want prefix \"generate: \" and %q", err, tt.err)
			}
			if newErr.Error() != err.Error() {
				t.Errorf("New = %q, Validate = %q", newErr, err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Seed: 1, Users: 100_000, Artists: 5_000, Songs: 200_000, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Span: 7 * 24 * time.Hour, Events: 1_000_000, LiveDropListeners: 50_000}
	if got := g.Config(); got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
}
