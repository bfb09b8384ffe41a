package serve

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/kappa-stream/kappa/serve/auth"
)

// Floors are the privacy floors of the exact fan-zone answers for every
// client but an admin (auth.IsAdmin): a cell's count tells where its fans
// live, so a count of one or two is a user's home.
type Floors struct {
	// MinZoneFans is the fewest fans a cell shows (default 10): fan
	// zones list no cell with fewer, and /v1/cells/{cell}/fans answers
	// 0 with "suppressed" for one with fewer.
	MinZoneFans int64
	// MaxPublicRes is the finest H3 resolution answered (default 8,
	// cells of about 0.7 km²): a finer one is 403.
	MaxPublicRes int
}

// Defaults of Floors.
const (
	DefaultMinZoneFans  = 10
	DefaultMaxPublicRes = 8
)

// Validate sets the defaults of zero fields and reports bad ones.
func (f *Floors) Validate() error {
	if f.MinZoneFans == 0 {
		f.MinZoneFans = DefaultMinZoneFans
	}
	if f.MaxPublicRes == 0 {
		f.MaxPublicRes = DefaultMaxPublicRes
	}
	if f.MinZoneFans < 1 || f.MaxPublicRes < 0 || f.MaxPublicRes > 15 {
		return errors.New("serve: the fan-zone floors need a positive minimum of fans and a resolution in 0..15")
	}
	return nil
}

// floors are the floors r's client is held to; nil for an admin or
// without floors.
func (s *Server) floors(r *http.Request) *Floors {
	if s.cfg.Floors == nil || auth.IsAdmin(r.Context()) {
		return nil
	}
	return s.cfg.Floors
}

// checkRes answers 403 and returns false when res is finer than r's
// client may read.
func (s *Server) checkRes(w http.ResponseWriter, r *http.Request, res int) bool {
	if f := s.floors(r); f != nil && res > f.MaxPublicRes {
		writeError(w, http.StatusForbidden, "resolution "+strconv.Itoa(res)+" is finer than --max-public-res "+
			strconv.Itoa(f.MaxPublicRes)+" allows a non-admin key")
		return false
	}
	return true
}
