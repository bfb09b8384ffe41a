package catalog

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Entity is one song or artist in the versioned table: every version the
// feed made of it, oldest first. Its table value is its JSON.
type Entity struct {
	Key      string    `json:"key"`
	Versions []Version `json:"versions"`
}

// Version is one accepted change of an entity.
type Version struct {
	// N numbers the entity's versions from 1.
	N     int    `json:"n"`
	Batch string `json:"batch"`
	// Updated is the feed's time of the change; At when kappa accepted it
	// (the feed record's log time, so a replay gives the same).
	Updated time.Time `json:"updated"`
	At      time.Time `json:"at"`
	// Title and ArtistID of a song; Name of an artist.
	Title    string `json:"title,omitempty"`
	ArtistID int64  `json:"artist_id,omitempty"`
	Name     string `json:"name,omitempty"`
	// RolledBack is the batch of the rollback that removed the version.
	RolledBack string `json:"rolled_back,omitempty"`
}

// Current is the entity's last version that is not rolled back.
func (e *Entity) Current() (Version, bool) {
	if e == nil {
		return Version{}, false
	}
	for i := len(e.Versions) - 1; i >= 0; i-- {
		if e.Versions[i].RolledBack == "" {
			return e.Versions[i], true
		}
	}
	return Version{}, false
}

// Outcome is what Apply did with a record.
type Outcome int

const (
	// Accepted: a new version, or a rollback that rolled versions back.
	Accepted Outcome = iota
	// Duplicate: the record says what the current version says (after
	// cleaning, ignoring case); nothing changed.
	Duplicate
	// Rejected: the record cannot be used; the reason says why.
	Rejected
)

// maxName is the longest title or name kept, in bytes.
const maxName = 512

// Clean normalises a title or name: Unicode NFC, control characters
// dropped, runs of white space made one space, trimmed.
func Clean(s string) string {
	s = norm.NFC.String(s)
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Apply folds record r, read at log time at, into entity e (nil when the
// table has none) and returns the entity as it is afterwards. The rules:
//
//   - titles and names are cleaned (Clean); an empty or missing one keeps
//     the current value, and a new entity needs one (a song also its
//     artist_id);
//   - a song's artist is the one its first version named: a record naming
//     another is a conflict, rejected (roll back the batch that set a
//     wrong one);
//   - a record that changes nothing but case is a duplicate;
//   - a change whose updated is older than the current version's is out
//     of order: rejected (the newer version stands);
//   - a rollback marks the versions of its batch, or those accepted after
//     its time, as rolled back; one that finds none is a duplicate.
//
// On Duplicate and Rejected the returned entity is e; reason explains a
// rejection.
func Apply(e *Entity, r Record, at time.Time) (out *Entity, o Outcome, reason string) {
	if r.Kind == KindRollback {
		return rollback(e, r)
	}
	cur, exists := e.Current()
	title, name := cleaned(r.Title), cleaned(r.Name)
	if len(title) > maxName || len(name) > maxName {
		return e, Rejected, fmt.Sprintf("title or name longer than %d bytes", maxName)
	}
	updated, _ := time.Parse(time.RFC3339, r.Updated)
	next := Version{Batch: r.Batch, Updated: updated.UTC(), At: at.UTC()}
	switch r.Kind {
	case KindSong:
		next.Title, next.ArtistID = or(title, cur.Title), r.ArtistID
		switch {
		case next.Title == "" || (!exists && next.ArtistID == 0):
			return e, Rejected, "a new song needs a title and an artist_id"
		case exists && next.ArtistID == 0:
			next.ArtistID = cur.ArtistID
		case exists && next.ArtistID != cur.ArtistID:
			return e, Rejected, fmt.Sprintf("conflicting artist_id %d: song %d is by artist %d (version %d, batch %s)",
				next.ArtistID, r.SongID, cur.ArtistID, cur.N, cur.Batch)
		}
	case KindArtist:
		if next.Name = or(name, cur.Name); next.Name == "" {
			return e, Rejected, "a new artist needs a name"
		}
	}
	if exists {
		if strings.EqualFold(next.Title, cur.Title) && strings.EqualFold(next.Name, cur.Name) {
			return e, Duplicate, ""
		}
		if next.Updated.Before(cur.Updated) {
			return e, Rejected, fmt.Sprintf("out of order: updated %s is older than version %d's %s",
				next.Updated.Format(time.RFC3339), cur.N, cur.Updated.Format(time.RFC3339))
		}
	}
	out = &Entity{Key: r.Key()}
	if e != nil {
		out.Versions = append(out.Versions, e.Versions...)
	}
	next.N = len(out.Versions) + 1
	out.Versions = append(out.Versions, next)
	return out, Accepted, ""
}

func rollback(e *Entity, r Record) (*Entity, Outcome, string) {
	if e == nil {
		return e, Duplicate, ""
	}
	to, _ := time.Parse(time.RFC3339, r.To)
	out := &Entity{Key: e.Key, Versions: append([]Version(nil), e.Versions...)}
	n := 0
	for i, v := range out.Versions {
		if v.RolledBack != "" {
			continue
		}
		if (r.Rollback != "" && v.Batch == r.Rollback) || (r.To != "" && v.At.After(to)) {
			out.Versions[i].RolledBack = r.Batch
			n++
		}
	}
	if n == 0 {
		return e, Duplicate, ""
	}
	return out, Accepted, ""
}

func cleaned(s *string) string {
	if s == nil {
		return ""
	}
	return Clean(*s)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
