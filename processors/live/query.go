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
	prefix := rowKey(nil, cellKey{song: song, size: ms})[:1+8+4]
	var sk hyperloglog.Sketch
	errEnough := errors.New("enough")
	err = s.Scan(prefix, state.PrefixEnd(prefix), func(key, v []byte) error {
		if len(a.Windows) == last {
			return errEnough
		}
		start := int64(^state.Uint64(key, 1+8+4))
		plays, n := binary.Uvarint(v)
		if n <= 0 {
			return fmt.Errorf("live: row of song %d: %w", song, errShort)
		}
		sk.Reset()
		if err := sk.UnmarshalBinary(v[n:]); err != nil {
			return fmt.Errorf("live: row of song %d: %w", song, err)
		}
		a.Windows = append(a.Windows, Window{
			Start:     time.UnixMilli(start).UTC(),
			End:       time.UnixMilli(start + ms).UTC(),
			Plays:     plays,
			Listeners: sk.Estimate(),
		})
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return a, err
	}
	return a, nil
}
