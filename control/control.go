// Package control is kappa's control plane: which versions of the
// topology exist, the processor configuration each one runs with, and
// which one serves reads. It lives in a compacted topic of one partition
// (kappa.control) that every instance follows from the start, so every
// instance agrees on it and a change reaches all of them within one
// fetch.
//
// Two kinds of records, latest per key wins:
//
//	key "version/<name>"  value: Version as JSON
//	key "serving"         value: Serving as JSON
//
// A retired version keeps its record (with Retired set), so its name is
// never reused and instances that were down when it was retired still
// delete its state when they start.
package control

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TopicPartitions is the partition count the control topic must have: one,
// so every instance reads all changes in the order they were written.
const TopicPartitions = 1

// TopicConfigs are the configs the control topic is created with:
// compaction keeps the latest record of every key for as long as the
// cluster runs.
func TopicConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "compact"}
}

// Record keys.
const (
	keyServing       = "serving"
	keyVersionPrefix = "version/"
)

// FromEarliest is Version.From for a rebuild from the start of the log.
const FromEarliest = "earliest"

var nameRE = regexp.MustCompile(`^v[1-9][0-9]{0,8}$`)

// ValidName reports whether name is a version name: v1, v2, …
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Number is the number of a valid version name (v12 → 12), 0 otherwise.
func Number(name string) int {
	if !ValidName(name) {
		return 0
	}
	n, _ := strconv.Atoi(name[1:])
	return n
}

// Version is one version of the topology.
type Version struct {
	// Name is v1, v2, …: the consumer groups, internal topics and state
	// directories of the version carry it.
	Name string `json:"version"`
	// From is where the version's input starts: FromEarliest, or an
	// RFC 3339 time (its stage-1 group offsets were set by timestamp
	// before the version was declared).
	From string `json:"from"`
	// Forced is true when a partial replay (From a time) was asked for
	// though it gives wrong totals for stores that never close.
	Forced bool `json:"forced,omitempty"`
	// Replaces is the version that served when this one was declared;
	// empty for the first.
	Replaces string `json:"replaces,omitempty"`
	// Repartition is the suffix of the version's repartition topic
	// (kappa.<version>.<suffix>); empty in a version declared before it
	// existed, whose topic is kappa.<version>.song-deltas.
	Repartition string `json:"repartition,omitempty"`
	// Config is the processor configuration the version runs with,
	// the same on every instance. Its schema belongs to the caller.
	Config json.RawMessage `json:"config"`
	// Created is when the version was declared.
	Created time.Time `json:"created"`
	// Retired is when the version was retired; nil while it runs.
	Retired *time.Time `json:"retired,omitempty"`
}

// Active reports whether the version runs (is not retired).
func (v Version) Active() bool { return v.Retired == nil }

// Serving names the version that answers reads without version=.
type Serving struct {
	Version string    `json:"version"`
	Since   time.Time `json:"since"`
}

// State is the control topic's content.
type State struct {
	// Versions by name, retired ones included.
	Versions map[string]Version
	// Serving is the serving version; Serving.Version is empty before
	// the first version is declared.
	Serving Serving
}

// Sorted lists the versions by number.
func (s State) Sorted() []Version {
	out := slices.Collect(maps.Values(s.Versions))
	slices.SortFunc(out, func(a, b Version) int { return cmp.Compare(Number(a.Name), Number(b.Name)) })
	return out
}

// Active lists the versions that run, by number.
func (s State) Active() []Version {
	return slices.DeleteFunc(s.Sorted(), func(v Version) bool { return !v.Active() })
}

// Next is the name after the highest version ever declared (v1 when
// there is none).
func (s State) Next() string {
	n := 0
	for name := range s.Versions {
		n = max(n, Number(name))
	}
	return "v" + strconv.Itoa(n+1)
}

// clone returns a copy of s that shares nothing mutable with it.
func (s State) clone() State {
	return State{Versions: maps.Clone(s.Versions), Serving: s.Serving}
}

// apply folds one control record into s. A record it cannot read is an
// error and leaves s as it was.
func (s *State) apply(key, value []byte) error {
	k := string(key)
	switch {
	case k == keyServing:
		if value == nil {
			s.Serving = Serving{}
			return nil
		}
		var sv Serving
		if err := json.Unmarshal(value, &sv); err != nil {
			return fmt.Errorf("control: record %q: %w", k, err)
		}
		if !ValidName(sv.Version) {
			return fmt.Errorf("control: record %q: bad version %q", k, sv.Version)
		}
		s.Serving = sv
	case strings.HasPrefix(k, keyVersionPrefix):
		name := strings.TrimPrefix(k, keyVersionPrefix)
		if value == nil {
			delete(s.Versions, name)
			return nil
		}
		var v Version
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("control: record %q: %w", k, err)
		}
		if v.Name != name || !ValidName(name) {
			return fmt.Errorf("control: record %q: version %q does not match its key", k, v.Name)
		}
		if s.Versions == nil {
			s.Versions = make(map[string]Version)
		}
		s.Versions[name] = v
	default:
		return fmt.Errorf("control: unknown record key %q", k)
	}
	return nil
}

// encodeVersion is the record of v.
func encodeVersion(v Version) (key, value []byte, err error) {
	if !ValidName(v.Name) {
		return nil, nil, fmt.Errorf("control: bad version name %q", v.Name)
	}
	if len(v.Config) == 0 || !json.Valid(v.Config) {
		return nil, nil, errors.New("control: version " + v.Name + ": config is not JSON")
	}
	value, err = json.Marshal(v)
	return []byte(keyVersionPrefix + v.Name), value, err
}

// encodeServing is the record of s.
func encodeServing(s Serving) (key, value []byte, err error) {
	if !ValidName(s.Version) {
		return nil, nil, fmt.Errorf("control: bad serving version %q", s.Version)
	}
	value, err = json.Marshal(s)
	return []byte(keyServing), value, err
}
