package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/kappa-stream/kappa/events"
)

// Ingest limits.
const (
	maxIngestBody     = 16 << 20
	maxIngestRejected = 20 // rejections listed in a response
)

// Produce writes valid listens to the listen log, keyed by user, and
// returns once all are acknowledged. values[i] is the JSON of the listen
// whose user_id is users[i].
type Produce func(ctx context.Context, users []int64, values [][]byte) error

type ingestResponse struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []ingestErr `json:"errors,omitempty"`
}

type ingestErr struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ingest accepts JSON lines or one JSON array of listens. Valid listens go
// to the log as sent; invalid ones are counted and the first few listed
// with their index (0-based line or element) and reason. It answers 202
// once the valid ones are acknowledged by the log.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIngestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body over "+strconv.Itoa(maxIngestBody>>20)+" MiB")
			return
		}
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	records, err := splitListens(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var (
		dec    events.Decoder
		l      events.Listen
		out    ingestResponse
		users  []int64
		values [][]byte
	)
	for i, rec := range records {
		if err := dec.Decode(rec, &l); err != nil {
			out.Rejected++
			if len(out.Errors) < maxIngestRejected {
				out.Errors = append(out.Errors, ingestErr{Index: i, Error: err.Error()})
			}
			continue
		}
		users = append(users, l.UserID)
		values = append(values, rec)
	}
	if len(values) > 0 {
		if err := s.cfg.Produce(r.Context(), users, values); err != nil {
			s.cfg.Logger.Error("ingest produce failed", "records", len(values), "err", err)
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "the listen log did not acknowledge the listens: "+err.Error())
			return
		}
	}
	out.Accepted = len(values)
	writeJSON(w, http.StatusAccepted, out)
}

// splitListens returns the elements of a JSON array body, or the
// non-empty lines of a JSON-lines body.
func splitListens(body []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, badRequest("body starts with [ but is not a JSON array: " + err.Error())
		}
		out := make([][]byte, len(elems))
		for i, e := range elems {
			out[i] = e
		}
		return out, nil
	}
	var out [][]byte
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out, nil
}
