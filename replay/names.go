package replay

import (
	"path/filepath"

	"github.com/kappa-stream/kappa/control"
)

// Repartition is the suffix of the repartition topic of the versions
// declared now (kappa.<version>.repartition): it carries the records of
// every processor, not only songs'. Versions declared before keep
// kappa.<version>.song-deltas (LegacyRepartition).
const (
	Repartition       = "repartition"
	LegacyRepartition = "song-deltas"
)

// Names are the versioned consumer groups, internal topics and state
// directories of one topology version (DESIGN.md, "Versions and replay").
type Names struct {
	// UsersGroup is stage 1 (on listens), AggregatesGroup stage 2,
	// FeaturesGroup the features stage (on song-features, with --similar).
	UsersGroup, AggregatesGroup, FeaturesGroup string
	// Deltas is the repartition topic (stage 1 → stage 2: every
	// processor's records); Changelog and
	// UsersChangelog the compacted changelogs of the stores of stage 2
	// and (with fan zones or similar users) stage 1, FeaturesChangelog
	// that of the features stage; LiveFinal the closed live windows
	// (Topic names the others of a processor's).
	Deltas, Changelog, UsersChangelog, FeaturesChangelog, LiveFinal string
	// DeltasDLQ receives the repartition records stage 2 cannot decode,
	// with their reason and source.
	DeltasDLQ string
	// UsersDir, AggregatesDir and FeaturesDir hold the stores of the
	// stages.
	UsersDir, AggregatesDir, FeaturesDir string
	prefix, data                         string
}

// NamesOf returns the names of version v under the data directory data.
func NamesOf(data string, v control.Version) Names {
	version := v.Name
	p := "kappa." + version + "."
	repartition := v.Repartition
	if repartition == "" {
		repartition = LegacyRepartition
	}
	return Names{
		UsersGroup:        p + "users",
		AggregatesGroup:   p + "aggregates",
		FeaturesGroup:     p + "features",
		Deltas:            p + repartition,
		DeltasDLQ:         p + repartition + ".dlq",
		Changelog:         p + "rollups-changelog",
		UsersChangelog:    p + "users-changelog",
		FeaturesChangelog: p + "features-changelog",
		LiveFinal:         p + "live-final",
		UsersDir:          filepath.Join(data, version, "users"),
		AggregatesDir:     filepath.Join(data, version, "aggregates"),
		FeaturesDir:       filepath.Join(data, version, "features"),
		prefix:            p,
		data:              filepath.Join(data, version),
	}
}

// Groups are the version's consumer groups.
func (n Names) Groups() []string { return []string{n.UsersGroup, n.AggregatesGroup, n.FeaturesGroup} }

// Topics are the version's internal topics.
func (n Names) Topics() []string {
	return []string{n.Deltas, n.DeltasDLQ, n.Changelog, n.UsersChangelog, n.FeaturesChangelog, n.LiveFinal}
}

// Topic is the name of a per-version topic with the given suffix.
func (n Names) Topic(suffix string) string { return n.prefix + suffix }

// dir is the store directory of the version's stage name.
func (n Names) dir(name string) string { return filepath.Join(n.data, name) }
