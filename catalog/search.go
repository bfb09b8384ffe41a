package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Kinds of search hits.
const (
	HitArtist = "artist"
	HitSong   = "song"
)

// Hit is one entity a search found.
type Hit struct {
	// Kind is HitArtist or HitSong.
	Kind string
	// ID is the artist's or the song's id.
	ID int64
	// Name is the artist's name or the song's title.
	Name string
	// ArtistID is a song's artist (0 for artists).
	ArtistID int64
}

// Entry is one name an Index searches: an artist's name or a song's
// title (with its artist).
type Entry = Hit

// Fold is the form names and queries are compared in: Unicode NFD
// without combining marks, case-folded, spaces trimmed and single. "Beyoncé"
// and "BEYONCE" fold alike.
func Fold(s string) string {
	s = norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return cases.Fold().String(b.String())
}

// Index finds entries by a prefix of their folded name or of any word
// of it. An Index is immutable and safe for concurrent use.
type Index struct {
	entries []Entry
	// keys are the folded names from each word start on, sorted, each
	// with the entry it belongs to and whether it is the name's start.
	keys []indexKey
}

type indexKey struct {
	suffix string
	entry  int32
	start  bool
}

// NewIndex indexes entries (entries with an empty name are left out).
func NewIndex(entries []Entry) *Index {
	x := &Index{entries: entries}
	for i, e := range entries {
		f := Fold(e.Name)
		for pos := 0; pos < len(f); {
			x.keys = append(x.keys, indexKey{suffix: f[pos:], entry: int32(i), start: pos == 0})
			next := strings.IndexByte(f[pos:], ' ')
			if next < 0 {
				break
			}
			pos += next + 1
		}
	}
	slices.SortFunc(x.keys, func(a, b indexKey) int { return strings.Compare(a.suffix, b.suffix) })
	return x
}

// maxScan bounds the index keys a search looks at: a one-letter query
// matches a large part of the catalog, and ranks the first maxScan
// matches in key order.
const maxScan = 4096

// Search returns at most limit artists and at most limit songs whose
// name, or a word of it, starts with q (compared folded), best first: exact names, then
// artists before songs, then names that start with q, then shorter
// names, then by id. An empty query finds nothing.
func (x *Index) Search(q string, limit int) []Hit {
	fq := Fold(q)
	if fq == "" || limit <= 0 {
		return nil
	}
	type match struct {
		entry        int32
		exact, start bool
	}
	byEntry := make(map[int32]int)
	var found []match
	i, _ := slices.BinarySearchFunc(x.keys, fq, func(k indexKey, q string) int { return strings.Compare(k.suffix, q) })
	for n := 0; i < len(x.keys) && n < maxScan && strings.HasPrefix(x.keys[i].suffix, fq); i, n = i+1, n+1 {
		k := x.keys[i]
		m := match{entry: k.entry, start: k.start, exact: k.start && k.suffix == fq}
		if j, ok := byEntry[k.entry]; ok {
			found[j].start = found[j].start || m.start
			found[j].exact = found[j].exact || m.exact
			continue
		}
		byEntry[k.entry] = len(found)
		found = append(found, m)
	}
	first := func(b bool) int {
		if b {
			return 0
		}
		return 1
	}
	slices.SortFunc(found, func(a, b match) int {
		ea, eb := x.entries[a.entry], x.entries[b.entry]
		return cmp.Or(
			cmp.Compare(first(a.exact), first(b.exact)),
			cmp.Compare(first(ea.Kind == HitArtist), first(eb.Kind == HitArtist)),
			cmp.Compare(first(a.start), first(b.start)),
			cmp.Compare(len(ea.Name), len(eb.Name)),
			cmp.Compare(ea.ID, eb.ID),
		)
	})
	var out []Hit
	artists, songs := 0, 0
	for _, m := range found {
		e := x.entries[m.entry]
		switch {
		case e.Kind == HitArtist && artists < limit:
			artists++
		case e.Kind == HitSong && songs < limit:
			songs++
		default:
			continue
		}
		out = append(out, e)
	}
	return out
}

// ErrNotRecovered is the error of a search before the view has read the
// whole table once.
var ErrNotRecovered = errors.New("catalog: the view is still reading the table")

// searchRefresh is how old an index may get before a search starts
// rebuilding it from the view (in the background: searches use the old
// one meanwhile).
const searchRefresh = 15 * time.Second

// searchIndex is the View's current index and when it was built.
type searchIndex struct {
	*Index
	built time.Time
}

// viewSearch holds the View's search index.
type viewSearch struct {
	idx atomic.Pointer[searchIndex]
	// building is held while an index is built.
	building sync.Mutex
}

// Search finds artists and songs by a prefix of their names and titles
// (at most limit of each kind; see Index.Search) in the current versions of the table. The first
// search builds the index (a scan of the table, about a second for the
// default synthetic catalog); later ones use it and rebuild it in the
// background once it is older than 15 s. It returns ErrNotRecovered
// before the view has caught up with the table.
func (v *View) Search(q string, limit int) ([]Hit, error) {
	cur := v.search.idx.Load()
	switch {
	case cur == nil:
		v.search.building.Lock()
		defer v.search.building.Unlock()
		if cur = v.search.idx.Load(); cur == nil {
			x, err := v.buildIndex()
			if err != nil {
				return nil, err
			}
			cur = x
		}
	case time.Since(cur.built) > searchRefresh && v.search.building.TryLock():
		go func() {
			defer v.search.building.Unlock()
			if _, err := v.buildIndex(); err != nil {
				v.cfg.Logger.Warn("catalog: rebuilding the search index failed", "err", err)
			}
		}()
	}
	return cur.Search(q, limit), nil
}

// buildIndex scans the view into a new index and stores it.
// REQUIRES: v.search.building held.
func (v *View) buildIndex() (*searchIndex, error) {
	gv := v.v.Load()
	if gv == nil || !gv.Recovered() {
		return nil, ErrNotRecovered
	}
	it, err := gv.Iterator()
	if err != nil {
		return nil, fmt.Errorf("catalog: search index: %w", err)
	}
	defer it.Release()
	var entries []Entry
	for it.Next() {
		val, err := it.Value()
		if err != nil {
			return nil, fmt.Errorf("catalog: search index: %s: %w", it.Key(), err)
		}
		e, ok := val.(*Entity)
		if !ok {
			continue
		}
		if h, ok := e.hit(); ok {
			entries = append(entries, h)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("catalog: search index: %w", err)
	}
	x := &searchIndex{Index: NewIndex(entries), built: time.Now()}
	v.search.idx.Store(x)
	return x, nil
}

// hit is the entity's current version as a search entry.
func (e *Entity) hit() (Hit, bool) {
	cur, ok := e.Current()
	if !ok {
		return Hit{}, false
	}
	kind, id, ok := parseKey(e.Key)
	if !ok {
		return Hit{}, false
	}
	if kind == HitSong {
		return Hit{Kind: HitSong, ID: id, Name: cur.Title, ArtistID: cur.ArtistID}, cur.Title != ""
	}
	return Hit{Kind: HitArtist, ID: id, Name: cur.Name}, cur.Name != ""
}

// parseKey splits an entity key (SongKey, ArtistKey) into its kind and id.
func parseKey(key string) (kind string, id int64, ok bool) {
	k, n, found := strings.Cut(key, ":")
	if !found || (k != HitSong && k != HitArtist) {
		return "", 0, false
	}
	id, err := strconv.ParseInt(n, 10, 64)
	return k, id, err == nil && id > 0
}
