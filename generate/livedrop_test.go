package generate

import (
	"testing"
	"time"
)

func TestLiveDrop(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		listeners int
	}{
		{"default listeners", Config{Events: 200_000, LiveDrop: true}, 50_000},
		{"capped at users", Config{Users: 1_000, Events: 10_000, LiveDrop: true}, 1_000},
		{"capped at half the events", Config{Users: 5_000, Events: 4_000, LiveDrop: true}, 2_000},
		{"all users, with malformed lines", Config{Users: 3_000, Events: 12_000, LiveDrop: true, LiveDropListeners: 3_000, MalformedRate: 0.1}, 3_000},
		{"short span", Config{Users: 500, Events: 2_000, Span: 3 * time.Minute, LiveDrop: true, LiveDropListeners: 200}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, lines := generate(t, tt.cfg, tt.cfg.Events*5/4)
			cfg := g.Config()
			d, ok := g.Drop()
			if !ok {
				t.Fatal("no drop")
			}
			if d.Listeners != tt.listeners {
				t.Fatalf("Listeners = %d, want %d", d.Listeners, tt.listeners)
			}
			if d.SongID != int64(cfg.Songs)+1 {
				t.Errorf("SongID = %d, want Songs+1", d.SongID)
			}
			if d.Window.Truncate(time.Minute) != d.Window || d.Window.Location() != time.UTC {
				t.Errorf("Window %s not a UTC minute", d.Window)
			}
			end := d.Window.Add(time.Minute)
			mid := cfg.Start.Add(cfg.Span / 2)
			if d.Window.Before(cfg.Start) || end.After(cfg.Start.Add(cfg.Span)) || mid.Sub(d.Window) > time.Minute || d.Window.Sub(mid) > time.Minute {
				t.Errorf("Window %s not in the middle of [%s, %s)", d.Window, cfg.Start, cfg.Start.Add(cfg.Span))
			}

			listeners := map[int64]int{}
			var others, replays int
			for _, l := range lines {
				if l.malformed {
					continue
				}
				ev, err := parseListen(l.line)
				if err != nil {
					t.Fatal(err)
				}
				inWindow := !ev.ts.Before(d.Window) && ev.ts.Before(end)
				if ev.song != d.SongID {
					if inWindow {
						others++
					}
					continue
				}
				if ev.artist != d.ArtistID {
					t.Fatalf("line %d: drop song by artist %d, want %d", l.index, ev.artist, d.ArtistID)
				}
				switch {
				case inWindow:
					if l.index < d.FirstEvent || l.index >= d.EndEvent {
						t.Fatalf("line %d: drop start outside events [%d, %d)", l.index, d.FirstEvent, d.EndEvent)
					}
					listeners[ev.user]++
				case ev.ts.Before(d.Window):
					t.Fatalf("line %d: drop song played at %s, before its window %s", l.index, ev.tsRaw, d.Window)
				default:
					replays++
				}
			}
			if len(listeners) != tt.listeners {
				t.Errorf("distinct listeners in the window = %d, want %d", len(listeners), tt.listeners)
			}
			for u, n := range listeners {
				if n != 1 {
					t.Fatalf("user %d started the drop %d times", u, n)
				}
			}
			if others == 0 {
				t.Error("no other traffic in the drop window")
			}
			if d.Listeners >= 1_000 && replays == 0 {
				t.Error("nobody replays the drop song after its window")
			}
			t.Logf("drop %+v: %d other events in the window, %d replays after", d, others, replays)
		})
	}
}

func TestNoLiveDrop(t *testing.T) {
	g, lines := generate(t, Config{Users: 1_000, Events: 10_000}, 10_000)
	if _, ok := g.Drop(); ok {
		t.Fatal("Drop reports a drop without Config.LiveDrop")
	}
	for _, l := range lines {
		ev, err := parseListen(l.line)
		if err != nil {
			t.Fatal(err)
		}
		if ev.song > int64(g.Config().Songs) {
			t.Fatalf("line %d: song %d beyond the catalogue", l.index, ev.song)
		}
	}
}
