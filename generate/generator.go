package generate

import (
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"
)

// Shape of the traffic.
const (
	noLocationPerMille = 200 // listens without lat/lng
	nearbyPerMille     = 96  // listens in town but away from home
	travelPerMille     = 24  // listens in another city
	countryLocatedPct  = 92  // country present when located
	countryBarePct     = 75  // country present when not located
	lowerCountryPct    = 4   // country in lower case
	noMsPlayedPct      = 3   // ms_played absent (= 0)
	skipPct            = 28  // listens skipped before 30 s
	partialPct         = 15  // listens stopped after 30 s, before the end
	eventIDPct         = 35  // lines with an event_id
	platformPct        = 10  // lines with an unknown "platform" field
	tsFirstPct         = 10  // lines in the other field order
	replayPerMille     = 3   // after the drop: replays of the drop song
	minSongMs          = 120_000
	maxSongMs          = 360_000
	dropArtistPool     = 10 // the drop's artist is among the top ranks
)

// Timestamp form mix, in percent (cumulative): the rest is epoch ms.
const (
	tsUTCPct       = 55
	tsUTCMillisPct = 75
	tsOffsetPct    = 87
)

// fields of a listen line, in the default order.
const (
	fUser = iota
	fSong
	fArtist
	fTS
	fMs
	fCountry
	fLat
	fLng
	fEventID
	fPlatform
	numFields
)

var fieldKeys = [numFields]string{
	`"user_id":`, `"song_id":`, `"artist_id":`, `"ts":`, `"ms_played":`,
	`"country":`, `"lat":`, `"lng":`, `"event_id":`, `"platform":`,
}

// Field orders: most producers write ids first; some lead with metadata.
var (
	orderDefault = [numFields]uint8{fUser, fSong, fArtist, fTS, fMs, fCountry, fLat, fLng, fEventID, fPlatform}
	orderTSFirst = [numFields]uint8{fEventID, fTS, fUser, fSong, fArtist, fMs, fLat, fLng, fCountry, fPlatform}
)

var platforms = [...]string{`"ios"`, `"android"`, `"web"`, `"desktop"`, `"android"`, `"ios"`}

const required = 1<<fUser | 1<<fSong | 1<<fArtist | 1<<fTS

// event is one listen before encoding.
type event struct {
	user, song, artist int64
	ts                 int64 // Unix ms
	tsForm             int
	offset             int32 // minutes east of UTC for tsOffset
	ms                 int64
	city               int // city of the location (or of home, without one)
	lowerCountry       bool
	lat, lng           float64 // filled even when not present
	id                 uint64
	platform           string
	present            uint16 // bit per field
	tsFirst            bool
}

// Generator produces the listen stream of one Config. It is not safe for
// concurrent use; it holds no goroutines or files, so there is nothing to
// close.
type Generator struct {
	cfg       Config
	pcg       *rand.PCG
	cat       *catalog
	cities    cityTable
	activity  perm // activity rank → user id-1 (heavy users first)
	dropUsers perm // k → user id-1 of the k-th drop listener
	tl        timeline
	clusters  uint64 // taste clusters: max(1, Users/clusterUsers)

	userSalt, songSalt, eventSalt uint64

	drop     Drop
	hasDrop  bool
	dropMs   int64
	dropDone int

	malformedIn  float64 // malformed probability of a normal event before Events
	malformedOut float64 // … after Events

	n     int   // events returned
	key   int64 // Kafka key of the last line; 0 when unreadable
	ev    event
	raw   []byte // scratch for malformed values
	dates dateCache
}

// New returns a Generator for cfg after applying defaults to its zero
// fields and validating it (see Config.Validate). Its memory grows with
// Artists only.
func New(cfg Config) (*Generator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := uint64(cfg.Seed)
	g := &Generator{
		cfg:      cfg,
		pcg:      rand.NewPCG(seed, mix(seed^0x6b61707061)),
		cities:   newCityTable(),
		clusters: max(1, uint64(cfg.Users)/clusterUsers),
	}
	r := rand.New(g.pcg)
	g.userSalt, g.songSalt, g.eventSalt = r.Uint64(), r.Uint64(), r.Uint64()
	g.cat = newCatalog(uint64(cfg.Songs), uint64(cfg.Artists), r)
	g.activity = newPerm(uint64(cfg.Users), r)
	g.dropUsers = newPerm(uint64(cfg.Users), r)

	listeners := 0
	if cfg.LiveDrop {
		listeners = min(cfg.LiveDropListeners, cfg.Users, cfg.Events/2)
	}
	var first, end int
	g.tl, first, end, g.dropMs = newTimeline(cfg, listeners)
	if listeners > 0 {
		g.hasDrop = true
		g.drop = Drop{
			SongID:     int64(cfg.Songs) + 1,
			ArtistID:   g.cat.artistIDOf(r.Uint64N(min(dropArtistPool, g.cat.artists))),
			Window:     time.UnixMilli(g.dropMs).UTC(),
			Listeners:  listeners,
			FirstEvent: first,
			EndEvent:   end,
		}
	}
	g.malformedIn, g.malformedOut = cfg.MalformedRate, cfg.MalformedRate
	if listeners > 0 {
		// The drop's starts are never malformed; make up for them so the
		// stream's overall rate is still MalformedRate.
		g.malformedIn = min(1, cfg.MalformedRate*float64(cfg.Events)/float64(cfg.Events-listeners))
	}
	return g, nil
}

// Config returns the Generator's configuration with defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Drop describes the live-drop burst; ok is false when the Config has no
// live drop (or it was capped to no listeners).
func (g *Generator) Drop() (d Drop, ok bool) { return g.drop, g.hasDrop }

// Count returns the number of events Next has returned so far.
func (g *Generator) Count() int { return g.n }

// Key appends the Kafka key of the line Next returned last: its user_id as
// a decimal string. For a malformed line that is the user_id the line still
// spells as a positive integer ("user_id":N followed by ',' or '}'), else
// "0"; before the first Next it is "0".
func (g *Generator) Key(dst []byte) []byte { return strconv.AppendInt(dst, g.key, 10) }

// Next appends the next event as one JSON object, without a trailing
// newline, to dst and returns the extended slice, and whether the line is
// malformed on purpose. A line never contains a newline and is far below
// 64 KiB. Next does not allocate when dst has room for the line (a few
// hundred bytes).
func (g *Generator) Next(dst []byte) (line []byte, malformed bool) {
	i := g.n
	g.n++
	ev := &g.ev
	if g.hasDrop && i >= g.drop.FirstEvent && i < g.drop.EndEvent {
		// Selection sampling: exactly Listeners starts among the slots.
		left := uint64(g.drop.Listeners - g.dropDone)
		if g.below(uint64(g.drop.EndEvent-i)) < left {
			g.dropStart(ev, i)
			g.key = ev.user
			return g.appendEvent(dst, ev, nil), false
		}
	}
	g.listen(ev, i)
	g.key = ev.user
	p := g.malformedOut
	if i < g.cfg.Events {
		p = g.malformedIn
	}
	if p > 0 && g.float() < p {
		return g.appendMalformed(dst, ev), true
	}
	return g.appendEvent(dst, ev, nil), false
}

// below returns a uniform value in [0, n) (n > 0; bias below 2^-32).
func (g *Generator) below(n uint64) uint64 {
	hi, _ := bits.Mul64(g.pcg.Uint64(), n)
	return hi
}

// float returns a uniform value in [0, 1).
func (g *Generator) float() float64 { return unit(g.pcg.Uint64()) }

// lateness returns how far event time lags the stream: mostly a moment,
// sometimes a minute, rarely (a phone back online) several minutes.
func (g *Generator) lateness() int64 {
	r := g.pcg.Uint64()
	switch x := r % 100; {
	case x < 94:
		return int64(r>>8) % 2_000
	case x < 99:
		return int64(r>>8) % 60_000
	default:
		return int64(r>>8) % 600_000
	}
}

// listen fills ev with a normal listen at event index i.
func (g *Generator) listen(ev *event, i int) {
	ts := max(g.tl.at(i)-g.lateness(), g.tl.startMs)
	if g.hasDrop && i >= g.drop.EndEvent && g.below(1000) < replayPerMille {
		// A drop listener comes back to the new song; never late, so
		// the drop minute keeps only the starts.
		k := g.below(uint64(g.drop.Listeners))
		p := g.profile(int64(g.dropUsers.at(k))+1, i)
		g.fill(ev, &p, g.tl.at(i), g.drop.SongID, g.drop.ArtistID)
		return
	}
	u := g.float()
	rank := min(uint64(float64(g.cfg.Users)*u*u), uint64(g.cfg.Users)-1)
	p := g.profile(int64(g.activity.at(rank))+1, i)
	var pos, artist uint64
	if g.float() < p.favP {
		artist = g.favourite(&p)
		pos = g.cat.songOf(artist, g.float())
	} else {
		pos = g.cat.popularSong()
		artist = g.cat.rankOf(pos)
	}
	g.fill(ev, &p, ts, g.cat.songIDOf(pos), g.cat.artistIDOf(artist))
}

// dropStart fills ev with the next listener starting the drop song.
func (g *Generator) dropStart(ev *event, i int) {
	k := uint64(g.dropDone)
	g.dropDone++
	p := g.profile(int64(g.dropUsers.at(k))+1, i)
	ts := max(g.tl.at(i)-int64(g.below(2_000)), g.dropMs)
	g.fill(ev, &p, ts, g.drop.SongID, g.drop.ArtistID)
}

// fill sets everything about ev but its identity: play length, location,
// country, encoding choices.
func (g *Generator) fill(ev *event, p *profile, ts, song, artist int64) {
	ev.user, ev.song, ev.artist, ev.ts = p.id, song, artist, ts
	ev.present = required

	// Play length: skips, partial plays, mostly the whole song.
	dur := int64(minSongMs + mix(uint64(song)^g.songSalt)%(maxSongMs-minSongMs+1))
	r := g.pcg.Uint64()
	switch x := r % 100; {
	case x < skipPct:
		f := unit(r)
		ev.ms = int64(f * f * 30_000)
	case x < skipPct+partialPct:
		ev.ms = 30_000 + int64(r>>8)%(dur-30_000)
	default:
		ev.ms = dur - int64(r>>8)%1_500
	}
	if (r>>40)%100 >= noMsPlayedPct {
		ev.present |= 1 << fMs
	}

	// Location: mostly home, sometimes in town, rarely away, often none.
	r = g.pcg.Uint64()
	ev.city, ev.lat, ev.lng = p.city, p.lat, p.lng
	countryPct := uint64(countryBarePct)
	switch x := r % 1000; {
	case x < noLocationPerMille:
	case x < noLocationPerMille+nearbyPerMille:
		ev.lat += float64(nearbyJitterDeg * tri(g.pcg.Uint64()))
		ev.lng += float64(nearbyJitterDeg * cities[p.city].lngScale * tri(g.pcg.Uint64()))
		ev.present |= 1<<fLat | 1<<fLng
		countryPct = countryLocatedPct
	case x < noLocationPerMille+nearbyPerMille+travelPerMille:
		ev.city = g.cities.pick(uint32(g.pcg.Uint64()))
		ev.lat, ev.lng = jitter(ev.city, g.pcg.Uint64(), g.pcg.Uint64(), homeJitterDeg)
		ev.present |= 1<<fLat | 1<<fLng
		countryPct = countryLocatedPct
	default:
		ev.present |= 1<<fLat | 1<<fLng
		countryPct = countryLocatedPct
	}
	if (r>>16)%100 < countryPct {
		ev.present |= 1 << fCountry
		ev.lowerCountry = (r>>24)%100 < lowerCountryPct
	}

	// Encoding.
	r = g.pcg.Uint64()
	switch x := r % 100; {
	case x < tsUTCPct:
		ev.tsForm = tsUTC
	case x < tsUTCMillisPct:
		ev.tsForm = tsUTCMillis
	case x < tsOffsetPct:
		ev.tsForm = tsOffset
		ev.offset = cities[ev.city].offset
	default:
		ev.tsForm = tsEpochMs
	}
	if (r>>8)%100 < eventIDPct {
		ev.present |= 1 << fEventID
		ev.id = mix(uint64(g.n) ^ g.eventSalt) // unique: g.n differs per line
	}
	if (r>>16)%100 < platformPct {
		ev.present |= 1 << fPlatform
		ev.platform = platforms[(r>>24)%uint64(len(platforms))]
	}
	ev.tsFirst = (r>>32)%100 < tsFirstPct
}

// patch changes one field of a line to make it malformed: the field is
// omitted, or written (even if absent) with raw as its value.
type patch struct {
	field int
	omit  bool
	raw   []byte
}

// appendEvent appends ev as a JSON object, changed by p if not nil.
func (g *Generator) appendEvent(dst []byte, ev *event, p *patch) []byte {
	if p == nil && !ev.tsFirst {
		return g.appendPlain(dst, ev)
	}
	order := &orderDefault
	if ev.tsFirst {
		order = &orderTSFirst
	}
	dst = append(dst, '{')
	sep := false
	for _, f := range order {
		present := ev.present&(1<<f) != 0
		patched := p != nil && p.field == int(f)
		if patched {
			if p.omit {
				continue
			}
			present = true
		}
		if !present {
			continue
		}
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, fieldKeys[f]...)
		if patched {
			dst = append(dst, p.raw...)
		} else {
			dst = g.appendValue(dst, ev, f)
		}
	}
	return append(dst, '}')
}

// appendPlain is appendEvent in the default order without a patch: the
// hot path, unrolled.
func (g *Generator) appendPlain(dst []byte, ev *event) []byte {
	dst = append(dst, `{"user_id":`...)
	dst = strconv.AppendInt(dst, ev.user, 10)
	dst = append(dst, `,"song_id":`...)
	dst = strconv.AppendInt(dst, ev.song, 10)
	dst = append(dst, `,"artist_id":`...)
	dst = strconv.AppendInt(dst, ev.artist, 10)
	dst = append(dst, `,"ts":`...)
	dst = appendTS(dst, &g.dates, ev.ts, ev.tsForm, ev.offset)
	for f := uint8(fMs); f < numFields; f++ {
		if ev.present&(1<<f) != 0 {
			dst = append(dst, ',')
			dst = append(dst, fieldKeys[f]...)
			dst = g.appendValue(dst, ev, f)
		}
	}
	return append(dst, '}')
}

// appendValue appends the JSON value of field f of ev.
func (g *Generator) appendValue(dst []byte, ev *event, f uint8) []byte {
	switch f {
	case fUser:
		return strconv.AppendInt(dst, ev.user, 10)
	case fSong:
		return strconv.AppendInt(dst, ev.song, 10)
	case fArtist:
		return strconv.AppendInt(dst, ev.artist, 10)
	case fTS:
		return appendTS(dst, &g.dates, ev.ts, ev.tsForm, ev.offset)
	case fMs:
		return strconv.AppendInt(dst, ev.ms, 10)
	case fCountry:
		c := cities[ev.city].country
		if ev.lowerCountry {
			c = cities[ev.city].lower
		}
		return append(dst, '"', c[0], c[1], '"')
	case fLat:
		return appendFixed6(dst, ev.lat)
	case fLng:
		return appendFixed6(dst, ev.lng)
	case fEventID:
		dst = append(dst, '"')
		dst = appendID(dst, ev.id)
		return append(dst, '"')
	default: // fPlatform
		return append(dst, ev.platform...)
	}
}
