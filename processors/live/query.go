package live

import (
	"encoding/binary"
	"errors"
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

// Query reads the newest last windows of size (one of Config.Windows) in
// which song was played, from its partition's store.
func Query(s *state.Store, song int64, size time.Duration, last int) (Answer, error) {
	var a Answer
	ms := size.Milliseconds()
	meta, found, err := s.Get(nil, metaKey(nil, ms))
	if err != nil {
		return a, err
	}
	if found && len(meta) >= 8 {
		if wm := int64(binary.BigEndian.Uint64(meta)); wm != windows.NoWatermark {
			a.Watermark, a.HasWatermark = time.UnixMilli(wm).UTC(), true
		}
	}
	prefix := indexKey(nil, cellKey{song: song, size: ms})[:1+8+4]
	var starts []int64
	errEnough := errors.New("enough")
	err = s.Scan(prefix, state.PrefixEnd(prefix), func(key, _ []byte) error {
		if len(starts) == last {
			return errEnough
		}
		starts = append(starts, int64(^state.Uint64(key, 1+8+4)))
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return a, err
	}
	var sk hyperloglog.Sketch
	var v []byte
	for _, start := range starts {
		var found bool
		if v, found, err = s.Get(v[:0], rowKey(nil, cellKey{size: ms, start: start, song: song})); err != nil {
			return a, err
		} else if !found {
			return a, fmt.Errorf("live: song %d has window %d indexed but no row", song, start)
		}
		plays, n := binary.Uvarint(v)
		if n <= 0 {
			return a, fmt.Errorf("live: row of song %d: %w", song, errShort)
		}
		sk = hyperloglog.Sketch{}
		if err := sk.UnmarshalBinary(v[n:]); err != nil {
			return a, fmt.Errorf("live: row of song %d: %w", song, err)
		}
		a.Windows = append(a.Windows, Window{
			Start:     time.UnixMilli(start).UTC(),
			End:       time.UnixMilli(start + ms).UTC(),
			Plays:     plays,
			Listeners: sk.Estimate(),
		})
	}
	return a, nil
}
