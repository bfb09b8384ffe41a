package fans

import (
	"math/rand/v2"
	"testing"

	"github.com/kappa-stream/kappa/events"
	"github.com/uber/h3-go/v4"
)

// BenchmarkApply applies a realistic mix to 10,000 users who already have
// a home and some fandoms: 99% of listens repeat the home location or have
// none, 1% come from somewhere new; artists follow a Zipf law. Each listen
// decodes the user's state, applies the listen and encodes the state, as
// the stage-1 task does around its store. It reports events/s and the
// share of listens that make their user pending (moves and new fandoms),
// and what publishing those users costs: deltas per publication.
func BenchmarkApply(b *testing.B) {
	var calls int
	p := countingProcessor(b, Config{}, &calls)
	r := rand.New(rand.NewPCG(5, 6))
	zipf := rand.NewZipf(r, 1.1, 1, 49_999)
	const nUsers = 10_000
	homes := make([]loc, nUsers)
	stored := make([][]byte, nUsers)
	for i := range stored {
		homes[i] = loc{r.Float64()*120 - 60, r.Float64()*360 - 180}
		var u User
		for range 20 {
			l := events.Listen{UserID: int64(i + 1), ArtistID: int64(zipf.Uint64()) + 1, TS: 1, HasLoc: true,
				Lat: homes[i].lat, Lng: homes[i].lng}
			p.Apply(&u, &l)
		}
		p.Publish(&u, nil)
		stored[i] = u.Append(nil)
	}
	listens := make([]events.Listen, 1<<16)
	for i := range listens {
		id := r.IntN(nUsers)
		l := events.Listen{UserID: int64(id + 1), SongID: 1, ArtistID: int64(zipf.Uint64()) + 1, TS: 2 + int64(i)}
		switch x := r.IntN(100); {
		case x == 0:
			l.HasLoc, l.Lat, l.Lng = true, r.Float64()*120-60, r.Float64()*360-180
		case x < 70:
			l.HasLoc, l.Lat, l.Lng = true, homes[id].lat, homes[id].lng
		}
		listens[i] = l
	}
	var (
		u   User
		ds  []Delta
		buf []byte
		n   int
		pub int
	)
	calls = 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		l := &listens[i&(len(listens)-1)]
		l.TS = 2 + int64(i) // NB: ever later, so that the 1% still move on later passes
		id := l.UserID - 1
		if err := u.Decode(stored[id]); err != nil {
			b.Fatal(err)
		}
		if p.Apply(&u, l) {
			ds = p.Publish(&u, ds[:0])
			n += len(ds)
			pub++
		}
		buf = u.Append(buf[:0])
		stored[id] = append(stored[id][:0], buf...)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(pub)/float64(b.N), "pending/event")
	b.ReportMetric(float64(n)/float64(max(pub, 1)), "deltas/publication")
	b.ReportMetric(float64(calls)/float64(max(pub, 1)), "h3/publication")
}

// BenchmarkLatLngToCell is the cost Publish avoids when the home did not
// move since it was published.
func BenchmarkLatLngToCell(b *testing.B) {
	ll := h3.NewLatLng(berlin.lat, berlin.lng)
	for b.Loop() {
		h3.LatLngToCell(ll, 9)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
