package replay

import "path/filepath"

// Names are the versioned consumer groups, internal topics and state
// directories of one topology version (DESIGN.md, "Versions and replay").
type Names struct {
	// UsersGroup is stage 1 (on listens), AggregatesGroup stage 2.
	UsersGroup, AggregatesGroup string
	// Deltas is the repartition topic (stage 1 → stage 2); Changelog and
	// UsersChangelog the compacted changelogs of the stores of stage 2
	// and (with fan zones) stage 1; LiveFinal the closed live windows.
	Deltas, Changelog, UsersChangelog, LiveFinal string
	// UsersDir and AggregatesDir hold the stores of the two stages.
	UsersDir, AggregatesDir string
}

// NamesOf returns the names of version under the data directory data.
func NamesOf(data, version string) Names {
	p := "kappa." + version + "."
	return Names{
		UsersGroup:      p + "users",
		AggregatesGroup: p + "aggregates",
		Deltas:          p + "song-deltas",
		Changelog:       p + "rollups-changelog",
		UsersChangelog:  p + "users-changelog",
		LiveFinal:       p + "live-final",
		UsersDir:        filepath.Join(data, version, "users"),
		AggregatesDir:   filepath.Join(data, version, "aggregates"),
	}
}

// Groups are the version's consumer groups.
func (n Names) Groups() []string { return []string{n.UsersGroup, n.AggregatesGroup} }

// Topics are the version's internal topics.
func (n Names) Topics() []string {
	return []string{n.Deltas, n.Changelog, n.UsersChangelog, n.LiveFinal}
}
