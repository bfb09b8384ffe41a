package rollups

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
)

// recorder keeps what an Stage2 told it, checking each old value
// against the store (as of the last commit) and the key order.
type recorder struct {
	t    *testing.T
	s    *state.Store
	rows []string
	last []byte
}

func (r *recorder) RowChanged(e Entity, id int64, day int32, old, new []byte) error {
	key := DayKey(nil, e, id, day)
	if r.last != nil && bytes.Compare(r.last, key) >= 0 {
		r.t.Errorf("row %x told after %x", key, r.last)
	}
	r.last = key
	stored, _, err := r.s.Get(nil, key)
	if err != nil {
		return err
	}
	if !bytes.Equal(stored, old) {
		r.t.Errorf("row %x: old %x, the store has %x", key, old, stored)
	}
	var rows []string
	if err := ForRow(new, func(c events.Country, plays, streams int64) {
		rows = append(rows, fmt.Sprintf("%s:%d/%d", c, plays, streams))
	}); err != nil {
		return err
	}
	r.rows = append(r.rows, fmt.Sprintf("%v %d %d %v", e, id, day, rows))
	return nil
}

func TestObserver(t *testing.T) {
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	agg := NewStage2(s, state.NewRecent(1<<20))
	rec := &recorder{t: t, s: s}
	agg.Observe(rec)
	d := day("2026-03-01")
	applyListens(t, s, agg, []string{
		`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z","ms_played":31000,"country":"GB"}`,
		`{"user_id":2,"song_id":7,"artist_id":3,"ts":"2026-03-01T11:00:00Z"}`,
	})
	rec.last = nil
	applyListens(t, s, agg, []string{
		`{"user_id":3,"song_id":7,"artist_id":3,"ts":"2026-03-01T12:00:00Z","country":"GB"}`,
	})
	want := []string{
		fmt.Sprintf("0 7 %d [:1/0 GB:1/1]", d), fmt.Sprintf("1 3 %d [:1/0 GB:1/1]", d),
		fmt.Sprintf("0 7 %d [:1/0 GB:2/1]", d), fmt.Sprintf("1 3 %d [:1/0 GB:2/1]", d),
	}
	if fmt.Sprint(rec.rows) != fmt.Sprint(want) {
		t.Fatalf("observed %v\nwant %v", rec.rows, want)
	}
}
