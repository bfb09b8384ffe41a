package live

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/axiomhq/hyperloglog"

	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/windows"
)

// Window is one window of a song's answer.
type Window struct {
	Start, End time.Time
	Plays      uint64
	Listeners  uint64 // estimated distinct users
}

// Answer is a song's newest windows of one size, newest first, and the
// watermark of its partition: windows ending more than the grace before it
// are final.
type Answer struct {
	Watermark    time.Time
	HasWatermark bool
	Windows      []Window
}

// Query reads song's last windows of size (one of cfg's) from its
// partition's store, newest first: from the window holding the largest
// event time the partition has seen, back to the last window the
// retention keeps; windows without plays count 0.
func Query(s *state.Store, cfg Config, song int64, size time.Duration, last int) (Answer, error) {
	var a Answer
	ms := size.Milliseconds()
	meta, found, err := s.Get(nil, metaKey(nil, ms))
	if err != nil || !found {
		return a, err
	}
	wm, maxTS, _, err := parseMeta(meta)
	if err != nil {
		return a, fmt.Errorf("live: window %s: %w", size, err)
	}
	if wm != windows.NoWatermark {
		a.Watermark, a.HasWatermark = time.UnixMilli(wm).UTC(), true
	}
	if maxTS == windows.NoWatermark {
		return a, nil
	}
	retention := cfg.withDefaults().Retention.Milliseconds()
	var (
		sk  hyperloglog.Sketch
		v   []byte
		key []byte
	)
	for start := maxTS - maxTS%ms; len(a.Windows) < last && start >= 0; start -= ms {
		if a.HasWatermark && start+ms+retention <= wm {
			break // expired
		}
		w := Window{Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(start + ms).UTC()}
		key = rowKey(key[:0], cellKey{size: ms, start: start, song: song})
		if v, found, err = s.Get(v[:0], key); err != nil {
			return a, err
		}
		if found {
			plays, n := binary.Uvarint(v)
			if n <= 0 {
				return a, fmt.Errorf("live: row of song %d: %w", song, errShort)
			}
			sk = hyperloglog.Sketch{}
			if err := sk.UnmarshalBinary(v[n:]); err != nil {
				return a, fmt.Errorf("live: row of song %d: %w", song, err)
			}
			w.Plays, w.Listeners = plays, sk.Estimate()
		}
		a.Windows = append(a.Windows, w)
	}
	return a, nil
}
