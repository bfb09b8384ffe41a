package replay

import "path/filepath"

// Names are the versioned consumer groups, internal topics and state
// directories of one topology version (DESIGN.md, "Versions and replay").
type Names struct {
	// UsersGroup is stage 1 (on listens), AggregatesGroup stage 2,
	// FeaturesGroup the features stage (on song-features, with --similar).
	UsersGroup, AggregatesGroup, FeaturesGroup string
	// Deltas is the repartition topic (stage 1 → stage 2); Changelog and
	// UsersChangelog the compacted changelogs of the stores of stage 2
	// and (with fan zones or similar users) stage 1, FeaturesChangelog
	// that of the features stage; LiveFinal the closed live windows.
	Deltas, Changelog, UsersChangelog, FeaturesChangelog, LiveFinal string
	// UsersDir, AggregatesDir and FeaturesDir hold the stores of the
	// stages.
	UsersDir, AggregatesDir, FeaturesDir string
}

// NamesOf returns the names of version under the data directory data.
func NamesOf(data, version string) Names {
	p := "kappa." + version + "."
	return Names{
		UsersGroup:        p + "users",
		AggregatesGroup:   p + "aggregates",
		FeaturesGroup:     p + "features",
		Deltas:            p + "song-deltas",
		Changelog:         p + "rollups-changelog",
		UsersChangelog:    p + "users-changelog",
		FeaturesChangelog: p + "features-changelog",
		LiveFinal:         p + "live-final",
		UsersDir:          filepath.Join(data, version, "users"),
		AggregatesDir:     filepath.Join(data, version, "aggregates"),
		FeaturesDir:       filepath.Join(data, version, "features"),
	}
}

// Groups are the version's consumer groups.
func (n Names) Groups() []string { return []string{n.UsersGroup, n.AggregatesGroup, n.FeaturesGroup} }

// Topics are the version's internal topics.
func (n Names) Topics() []string {
	return []string{n.Deltas, n.Changelog, n.UsersChangelog, n.FeaturesChangelog, n.LiveFinal}
}
