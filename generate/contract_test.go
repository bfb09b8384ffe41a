package generate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file checks lines against CONTRACT.md's listen event schema on its
// own (it must not share code with the generator, or the generator would
// be checked against itself).

// iso3166 is every assigned ISO 3166-1 alpha-2 code.
var iso3166 = func() map[string]bool {
	const codes = `AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
NA NC NE NF NG NI NL NO NP NR NU NZ OM
PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW`
	m := make(map[string]bool)
	for _, c := range strings.Fields(codes) {
		m[c] = true
	}
	return m
}()

// listen is a decoded valid line.
type listen struct {
	user, song, artist int64
	ts                 time.Time
	tsRaw              string
	ms                 int64
	country            string // as written
	hasLoc             bool
	lat, lng           float64
	eventID            string
	hasEventID         bool
}

// rfc3339 is the RFC 3339 date-time grammar (any offset, optional
// fraction); time.Parse alone also accepts a few non-RFC forms.
var rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)

// ruleError names the rule a line breaks.
type ruleError struct{ rule, detail string }

func (e *ruleError) Error() string { return e.rule + ": " + e.detail }

func broken(rule, format string, args ...any) error {
	return &ruleError{rule: rule, detail: fmt.Sprintf(format, args...)}
}

// ruleOf returns the rule an error of parseListen names.
func ruleOf(err error) string {
	var re *ruleError
	if errors.As(err, &re) {
		return re.rule
	}
	return "?"
}

func isInteger(raw json.RawMessage) bool {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return false
	}
	return !bytes.ContainsAny(raw, ".eE")
}

func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// parseListen decodes line by the rules of CONTRACT.md.
func parseListen(line []byte) (listen, error) {
	var l listen
	if len(line) > 64<<10 {
		return l, broken("size", "%d bytes", len(line))
	}
	if bytes.ContainsAny(line, "\r\n") {
		return l, broken("newline", "line holds a newline")
	}
	if !json.Valid(line) {
		return l, broken("json", "invalid JSON %.40q", line)
	}
	if bytes.TrimSpace(line)[0] != '{' {
		return l, broken("object", "not an object: %.40q", line)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return l, broken("json", "%s", err.Error())
	}
	id := func(name string, dst *int64) error {
		raw, ok := m[name]
		if !ok {
			return broken("missing", "%s", name)
		}
		if !isInteger(raw) {
			return broken("type", "%s not an integer: %s", name, raw)
		}
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return broken("range", "%s: %s", name, raw)
		}
		if v < 1 {
			return broken("range", "%s = %d", name, v)
		}
		*dst = v
		return nil
	}
	if err := id("user_id", &l.user); err != nil {
		return l, err
	}
	if err := id("song_id", &l.song); err != nil {
		return l, err
	}
	if err := id("artist_id", &l.artist); err != nil {
		return l, err
	}

	raw, ok := m["ts"]
	switch {
	case !ok:
		return l, broken("missing", "ts")
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return l, broken("ts", "%s", raw)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !rfc3339.MatchString(s) {
			return l, broken("ts", "not RFC 3339: %q", s)
		}
		l.ts, l.tsRaw = t, s
	case isInteger(raw):
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return l, broken("ts", "epoch ms %s", raw)
		}
		l.ts, l.tsRaw = time.UnixMilli(v), string(raw)
	default:
		return l, broken("ts", "wrong type: %s", raw)
	}

	if raw, ok := m["ms_played"]; ok {
		if !isInteger(raw) {
			return l, broken("type", "ms_played %s", raw)
		}
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || v < 0 || v > 86_400_000 {
			return l, broken("range", "ms_played %s", raw)
		}
		l.ms = v
	}

	if raw, ok := m["country"]; ok {
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return l, broken("type", "country %s", raw)
		}
		if !iso3166[strings.ToUpper(s)] {
			return l, broken("country", "%q", s)
		}
		l.country = s
	}

	rawLat, okLat := m["lat"]
	rawLng, okLng := m["lng"]
	if okLat != okLng {
		return l, broken("location", "only one of lat/lng")
	}
	if okLat {
		if !isNumber(rawLat) || !isNumber(rawLng) {
			return l, broken("type", "lat/lng %s/%s", rawLat, rawLng)
		}
		lat, err1 := strconv.ParseFloat(string(rawLat), 64)
		lng, err2 := strconv.ParseFloat(string(rawLng), 64)
		if err1 != nil || err2 != nil || math.Abs(lat) > 90 || math.Abs(lng) > 180 {
			return l, broken("range", "lat/lng %s/%s", rawLat, rawLng)
		}
		l.hasLoc, l.lat, l.lng = true, lat, lng
	}

	if raw, ok := m["event_id"]; ok {
		if raw[0] != '"' || json.Unmarshal(raw, &l.eventID) != nil {
			return l, broken("type", "event_id %s", raw)
		}
		if len(l.eventID) > 128 {
			return l, broken("range", "event_id of %d bytes", len(l.eventID))
		}
		l.hasEventID = true
	}
	return l, nil
}
