// Package catalog keeps song and artist metadata from third-party feeds,
// which are messy: duplicates, inconsistent casing and Unicode forms,
// missing fields, conflicting artist ids, records out of order, whole bad
// batches. Every feed record is cleaned (Unicode NFC, trimmed and
// single-spaced names, validated ids) and either accepted, as a new
// version of its entity with the feed batch it came from, dropped as a
// duplicate of the current version, or rejected with a reason. A rollback
// is a feed record too: it marks the versions of a batch (or those
// accepted after a time) as rolled back, so the entity's current version
// is its last good one again, and a replay of the feed reproduces it.
//
// The rules (Apply) are pure; the goka processor group that runs them
// over the feed topic and keeps the versioned table, the View that reads
// it, and the feed's key codec are in goka.go.
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kinds of feed records.
const (
	KindSong     = "song"
	KindArtist   = "artist"
	KindRollback = "rollback"
)

// Record is one feed record, the value of a catalog.feed message keyed by
// its entity's Key:
//
//	{"batch":"feed-a-0001","kind":"song","song_id":7,"title":"Hello","artist_id":3,"updated":"2026-11-20T10:00:00Z"}
//	{"batch":"feed-a-0001","kind":"artist","artist_id":3,"name":"Adele","updated":"2026-11-20T10:00:00Z"}
//	{"batch":"rollback-…","kind":"rollback","song_id":7,"rollback":"feed-a-0001"}
//	{"batch":"rollback-…","kind":"rollback","artist_id":3,"to":"2026-11-21T00:00:00Z"}
//
// A song or artist record may leave out title, name or artist_id when
// the entity exists already: the current values stand. A rollback names
// the entity it applies to, and either the batch whose versions it rolls
// back or the time after which accepted versions are rolled back.
type Record struct {
	Batch    string  `json:"batch"`
	Kind     string  `json:"kind"`
	SongID   int64   `json:"song_id,omitempty"`
	ArtistID int64   `json:"artist_id,omitempty"`
	Title    *string `json:"title,omitempty"`
	Name     *string `json:"name,omitempty"`
	// Updated is when the feed changed the entity (RFC 3339); the order
	// of versions. Not set on rollbacks.
	Updated string `json:"updated,omitempty"`
	// Rollback is the batch a rollback rolls back.
	Rollback string `json:"rollback,omitempty"`
	// To is the time (RFC 3339) after which the versions accepted are
	// rolled back.
	To string `json:"to,omitempty"`
}

// SongKey and ArtistKey are the entity keys of the feed and the table.
func SongKey(id int64) string   { return "song:" + strconv.FormatInt(id, 10) }
func ArtistKey(id int64) string { return "artist:" + strconv.FormatInt(id, 10) }

// Key is the entity key of the record: song:<id> for songs (and for
// rollbacks that name a song_id), artist:<id> otherwise.
func (r *Record) Key() string {
	if r.Kind == KindSong || (r.Kind == KindRollback && r.SongID != 0) {
		return SongKey(r.SongID)
	}
	return ArtistKey(r.ArtistID)
}

// maxBatch is the longest batch id kept.
const maxBatch = 128

// ErrMalformed marks a record that is not a feed record at all.
var ErrMalformed = errors.New("catalog: malformed record")

// Decode reads a feed record strictly: unknown fields, a wrong kind,
// non-positive ids, a bad time or batch are errors wrapping ErrMalformed.
func Decode(value []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %s", ErrMalformed, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	bad := func(format string, args ...any) (Record, error) {
		return Record{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	switch {
	case r.Batch == "" || len(r.Batch) > maxBatch:
		return bad("batch must be 1 to %d bytes", maxBatch)
	case r.SongID < 0 || r.ArtistID < 0:
		return bad("ids must be positive")
	}
	switch r.Kind {
	case KindSong:
		if r.SongID == 0 {
			return bad("a song record needs song_id")
		}
		if r.Name != nil {
			return bad("a song record has no name (title is the song's name)")
		}
	case KindArtist:
		if r.ArtistID == 0 {
			return bad("an artist record needs artist_id")
		}
		if r.Title != nil {
			return bad("an artist record has no title")
		}
	case KindRollback:
		switch {
		case (r.SongID == 0) == (r.ArtistID == 0):
			return bad("a rollback names one entity: song_id or artist_id")
		case (r.Rollback == "") == (r.To == ""):
			return bad("a rollback has either rollback (a batch) or to (a time)")
		case r.Title != nil || r.Name != nil || r.Updated != "":
			return bad("a rollback has no title, name or updated")
		}
		if r.To != "" {
			if _, err := time.Parse(time.RFC3339, r.To); err != nil {
				return bad("to %q: want RFC 3339", r.To)
			}
		}
		return r, nil
	default:
		return bad("kind %q: want song, artist or rollback", r.Kind)
	}
	if r.Rollback != "" || r.To != "" {
		return bad("only a rollback has rollback or to")
	}
	if _, err := time.Parse(time.RFC3339, r.Updated); err != nil {
		return bad("updated %q: want RFC 3339", r.Updated)
	}
	return r, nil
}
