package fans

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
)

// sampleUsers returns users built by applying listens, to seed codec tests.
func sampleUsers(t testing.TB) []User {
	p, err := NewProcessor(Config{MinPlays: 3})
	if err != nil {
		t.Fatal(err)
	}
	users := []User{{}}
	var u User
	for i, at := range []*loc{nil, &berlin, nil, &paris, &nearBerlin} {
		for _, a := range []int64{1, 1, 1, 7, math.MaxInt64, 1 << 40} {
			l := listen(a, int64(i)*1000-500, at)
			p.Apply(&u, &l)
		}
		users = append(users, cloneUser(&u))
		p.Publish(&u, nil)
		users = append(users, cloneUser(&u))
	}
	return users
}

func cloneUser(u *User) User {
	v := *u
	v.cells, v.artists = slices.Clone(u.cells), slices.Clone(u.artists)
	return v
}

func TestUserRoundTrip(t *testing.T) {
	for i, u := range sampleUsers(t) {
		b := u.Append([]byte("prefix"))
		var v User
		v.artists = make([]plays, 3) // Decode must not keep old contents
		if err := v.Decode(b[len("prefix"):]); err != nil {
			t.Fatalf("user %d: Decode: %v", i, err)
		}
		if !equalUsers(&u, &v) {
			t.Fatalf("user %d: round trip\n got %#v\nwant %#v", i, v, u)
		}
		if b2 := v.Append(nil); !bytes.Equal(b2, b[len("prefix"):]) {
			t.Fatalf("user %d: re-encoding differs", i)
		}
	}
}

func equalUsers(a, b *User) bool {
	return a.hasHome == b.hasHome && a.ts == b.ts && a.lat == b.lat && a.lng == b.lng &&
		a.published == b.published && a.pubLat == b.pubLat && a.pubLng == b.pubLng &&
		slices.Equal(a.cells, b.cells) && slices.Equal(a.artists, b.artists)
}

func TestUserDecodeCorrupt(t *testing.T) {
	users := sampleUsers(t)
	good := users[len(users)-1].Append(nil)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version", append([]byte{3}, good[1:]...)},
		{"flags", append([]byte{2, 4}, good[2:]...)},
		{"published without home", append([]byte{2, 2}, good[2:]...)},
		{"version 1 flags", append([]byte{1, 3}, good[2:]...)},
		{"counted, not published", []byte{2, 0, 1, 1, 3}},
		{"zero plays, counted", []byte{2, 0, 1, 1, 1}},
		{"trailing", append(slices.Clone(good), 0)},
		{"no artists count", []byte{1, 0}},
		{"artist count too large", []byte{1, 0, 5, 1, 1}},
		{"zero gap", []byte{1, 0, 2, 1, 1, 0, 1}},
		{"zero plays", []byte{1, 0, 1, 1, 0}},
		{"artist overflow", append([]byte{1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1}, 1, 1)},
		{"nan lat", home(math.NaN(), 0, nil)},
		{"lng out of range", home(0, 180.5, nil)},
		{"bad cell", home(0, 0, []h3.Cell{1})},
		{"cells not ascending", home(0, 0, []h3.Cell{cellOf(berlin, 9), cellOf(berlin, 5)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := users[2]
			if err := u.Decode(tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode = %v, want ErrCorrupt", err)
			}
			if !reflect.DeepEqual(u.String(), User{}.String()) || u.hasHome || u.ts != 0 {
				t.Fatalf("after a failed Decode, user = %v, want zero", u)
			}
		})
	}
	for n := range len(good) {
		var u User
		if err := u.Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(truncated to %d) = %v, want ErrCorrupt", n, err)
		}
	}
}

// home encodes a published user with a home and no artists, bypassing
// validation.
func home(lat, lng float64, cells []h3.Cell) []byte {
	u := User{hasHome: true, ts: 5, lat: lat, lng: lng, published: true, pubLat: lat, pubLng: lng, cells: cells}
	return u.Append(nil)
}

// TestDecodeVersion1 reads a user stored before publication was delayed:
// its home and fans were counted, so a move publishes theirs only, and a
// new fandom is counted at the new home.
func TestDecodeVersion1(t *testing.T) {
	all := []int{5, 6, 7, 8, 9}
	b := []byte{1, flagHome}
	b = binary.AppendVarint(b, 100)
	b = appendLatLng(b, berlin.lat, berlin.lng)
	b = append(b, byte(len(all)))
	for _, r := range all {
		b = binary.LittleEndian.AppendUint64(b, uint64(cellOf(berlin, r)))
	}
	b = append(b, 2, 1, 2, 1, 1) // artist 1: 2 plays, artist 2: 1 play
	var u User
	if err := u.Decode(b); err != nil {
		t.Fatal(err)
	}
	if got := u.Append(nil); !bytes.Equal(got, b) {
		t.Fatalf("a version-1 user appends as %x, want %x", got, b)
	}
	p, err := NewProcessor(Config{MinPlays: 2})
	if err != nil {
		t.Fatal(err)
	}
	if ds := p.Publish(&u, nil); len(ds) != 0 {
		t.Fatalf("publishing a version-1 user as it was: %v", ds)
	}
	for _, step := range []struct {
		l    events.Listen
		want []Delta
	}{
		{listen(3, 200, &paris), moved(berlin, paris, all, 1)},
		{listen(2, 300, nil), fanAt(paris, all, 1, 2)},
	} {
		if !p.Apply(&u, &step.l) {
			t.Fatalf("Apply(%+v) not pending", step.l)
		}
		if got, want := sortDeltas(p.Publish(&u, nil)), sortDeltas(step.want); !slices.Equal(got, want) {
			t.Fatalf("after %+v: deltas\n got %v\nwant %v", step.l, got, want)
		}
		var v User
		if err := v.Decode(u.Append(nil)); err != nil || !equalUsers(&u, &v) {
			t.Fatalf("version 2 round trip: %v", err)
		}
	}
}

// FuzzDecodeUser checks that Decode never panics and that what it accepts
// re-encodes to the same bytes.
func FuzzDecodeUser(f *testing.F) {
	for _, u := range sampleUsers(f) {
		f.Add(u.Append(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var u User
		if err := u.Decode(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		got := u.Append(nil)
		if !bytes.Equal(got, b) {
			t.Fatalf("Decode(%x) then Append = %x", b, got)
		}
	})
}

func TestDeltaKey(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var ds []Delta
	var keys [][]byte
	for range 500 {
		res := r.IntN(16)
		d := Delta{
			Artist: 1 + r.Int64N([]int64{3, math.MaxInt64}[r.IntN(2)]),
			Res:    res,
			Cell:   cellOf(loc{r.Float64()*180 - 90, r.Float64()*360 - 180}, res),
			N:      r.Int64N(5) - 2,
		}
		k, v := d.AppendKey(nil), d.AppendValue(nil)
		if len(k) != KeyLen || !bytes.HasPrefix(k, AppendPrefix(nil, d.Artist, d.Res)) {
			t.Fatalf("key of %v = %x", d, k)
		}
		got, err := DecodeDelta(k, v)
		if err != nil || got != d {
			t.Fatalf("DecodeDelta(key, value of %v) = %v, %v", d, got, err)
		}
		ds = append(ds, d)
		keys = append(keys, k)
	}
	// Bytewise key order is (Artist, Res, Cell) order, and cell order is
	// the order of the cells' names.
	for i := range ds {
		for j := range ds {
			c := bytes.Compare(keys[i], keys[j])
			if want := compareDeltas(ds[i], ds[j]); c != want {
				t.Fatalf("key order of %v, %v = %d, want %d", ds[i], ds[j], c, want)
			}
			if ds[i].Artist == ds[j].Artist && ds[i].Res == ds[j].Res {
				if s := cmpStrings(ds[i].Cell.String(), ds[j].Cell.String()); s != c {
					t.Fatalf("cell name order of %v, %v = %d, key order %d", ds[i], ds[j], s, c)
				}
			}
		}
	}
}

func cmpStrings(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }

func TestDecodeDeltaCorrupt(t *testing.T) {
	d := Delta{Artist: 3, Res: 7, Cell: cellOf(paris, 7), N: -1}
	k, v := d.AppendKey(nil), d.AppendValue(nil)
	bad := func(f func(k []byte) []byte) []byte { return f(slices.Clone(k)) }
	for _, tc := range []struct {
		name string
		k, v []byte
	}{
		{"short key", k[:KeyLen-1], v},
		{"long key", append(slices.Clone(k), 0), v},
		{"artist 0", bad(func(k []byte) []byte { clear(k[:8]); return k }), v},
		{"negative artist", bad(func(k []byte) []byte { k[0] = 0x80; return k }), v},
		{"res mismatch", bad(func(k []byte) []byte { k[8] = 8; return k }), v},
		{"not a cell", bad(func(k []byte) []byte { k[9] = 0x18; return k }), v},
		{"short value", k, v[:7]},
		{"two slots", k, append(slices.Clone(v), v...)},
	} {
		if _, err := DecodeDelta(tc.k, tc.v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeDelta = %v, want ErrCorrupt", tc.name, err)
		}
	}
}

func FuzzDecodeDelta(f *testing.F) {
	d := Delta{Artist: 3, Res: 7, Cell: cellOf(paris, 7), N: -1}
	f.Add(d.AppendKey(nil), d.AppendValue(nil))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		d, err := DecodeDelta(k, v)
		if err != nil {
			return
		}
		if !bytes.Equal(d.AppendKey(nil), k) || !bytes.Equal(d.AppendValue(nil), v) {
			t.Fatalf("DecodeDelta(%x, %x) = %v does not re-encode", k, v, d)
		}
	})
}

func TestSumDeltas(t *testing.T) {
	c5, c6, c9 := cellOf(berlin, 5), cellOf(berlin, 6), cellOf(paris, 5)
	got := sumDeltas([]Delta{
		{2, 5, c5, 1}, {1, 6, c6, 1}, {1, 5, c5, 1}, {1, 5, c9, -1},
		{1, 5, c5, -1}, {2, 5, c5, 1}, {1, 6, c6, 2}, {3, 5, c5, -1}, {3, 5, c5, 1},
	})
	want := []Delta{{1, 5, c9, -1}, {1, 6, c6, 3}, {2, 5, c5, 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("sumDeltas = %v, want %v", got, want)
	}
	if got := sumDeltas(nil); len(got) != 0 {
		t.Fatalf("sumDeltas(nil) = %v", got)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Resolutions: []int{0, 15}, MinPlays: MaxMinPlays}, true},
		{Config{Resolutions: []int{7}}, true},
		{Config{Resolutions: []int{-1}}, false},
		{Config{Resolutions: []int{16}}, false},
		{Config{Resolutions: []int{6, 5}}, false},
		{Config{Resolutions: []int{5, 5}}, false},
		{Config{MinPlays: -1}, false},
		{Config{MinPlays: MaxMinPlays + 1}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok %t", tc.cfg, err, tc.ok)
		}
		if err != nil && err.Error()[:6] != "fans: " {
			t.Errorf("error %q lacks the package prefix", err)
		}
		if _, perr := NewProcessor(tc.cfg); (perr == nil) != tc.ok {
			t.Errorf("NewProcessor(%+v) = %v", tc.cfg, perr)
		}
	}
	p, _ := NewProcessor(Config{})
	if !slices.Equal(p.res, []int{5, 6, 7, 8, 9}) || p.minPlays != 1 {
		t.Errorf("defaults: res %v, min plays %d", p.res, p.minPlays)
	}
}
