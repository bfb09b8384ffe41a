package parquet

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/events"
)

// Folders under Config.Dir.
const (
	listensDir = "listens"
	catalogDir = "catalog"
	// sinkDir holds the staging folders: outside every table, and its
	// leading underscore hides it from Spark's and Hive's listings too.
	sinkDir = "_sink"
)

// epoch is what one transaction of the sink reads: per partition, the
// rows by day and the span of offsets.
type epoch struct {
	parts map[int32]*partEpoch
	rows  int
	// coords holds the rows' Lat and Lng values, so that a located
	// listen costs no allocation of its own.
	coords []float64
}

// partEpoch is one partition's part of an epoch.
type partEpoch struct {
	// first and last are the offsets of the first and last data records
	// read (valid or not), first -1 when none; next is the offset the
	// epoch commits.
	first, last, next int64
	byDay             map[string][]Row
	rows, rejected    int
}

func newEpoch() *epoch { return &epoch{parts: map[int32]*partEpoch{}} }

func (e *epoch) part(p int32) *partEpoch {
	pe := e.parts[p]
	if pe == nil {
		pe = &partEpoch{first: -1, byDay: map[string][]Row{}}
		e.parts[p] = pe
	}
	return pe
}

// add records a data record at offset off: a row when l is a valid
// listen, else a rejection.
func (e *epoch) add(p int32, off int64, l *events.Listen, valid bool) {
	pe := e.part(p)
	if pe.first < 0 {
		pe.first = off
	}
	pe.last, pe.next = off, off+1
	if !valid {
		pe.rejected++
		return
	}
	d := dayOf(l.TS)
	r := rowOf(l, p, off)
	if l.HasLoc {
		if len(e.coords)+2 > cap(e.coords) {
			// NB: rows keep pointing into the old array, which stays
			// as it is.
			e.coords = make([]float64, 0, max(1024, 2*cap(e.coords)))
		}
		e.coords = append(e.coords, l.Lat, l.Lng)
		r.Lat, r.Lng = &e.coords[len(e.coords)-2], &e.coords[len(e.coords)-1]
	}
	pe.byDay[d] = append(pe.byDay[d], r)
	pe.rows++
	e.rows++
}

// skip records a control record at offset off: it only moves the
// committed offset.
func (e *epoch) skip(p int32, off int64) {
	e.part(p).next = off + 1
}

// Manifest describes one committed epoch: the value of the instance's
// record in the manifest topic (without Files) and the manifest.json of
// its staging folder (with them).
type Manifest struct {
	Epoch    string    `json:"epoch"`
	Instance string    `json:"instance"`
	Created  time.Time `json:"created"`
	Spans    []Span    `json:"spans"`
	Files    []File    `json:"files,omitempty"`
}

// Span is what an epoch read of one partition: data records First …
// Last (-1 when it read only control records), Rows of them valid (in
// files), Rejected invalid; Next is the offset it committed.
type Span struct {
	Partition int32 `json:"partition"`
	First     int64 `json:"first"`
	Last      int64 `json:"last"`
	Next      int64 `json:"next"`
	Rows      int   `json:"rows"`
	Rejected  int   `json:"rejected"`
}

// File is one file of an epoch: its path relative to Config.Dir, its
// rows and their first and last offsets, and its size.
type File struct {
	Path        string `json:"path"`
	Partition   int32  `json:"partition"`
	Rows        int    `json:"rows"`
	First, Last int64  `json:"-"`
	Bytes       int64  `json:"bytes"`
}

// fileName is the name of the file of partition p's rows of one day in
// an epoch that read offsets first … last of p: a re-run over the same
// offsets writes the same name and the same bytes.
func fileName(p int32, first, last int64) string {
	return strconv.Itoa(int(p)) + "-" + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + ".parquet"
}

// newEpochID names an epoch: its start time and 64 random bits, unique
// among the instance's epochs.
func newEpochID(now time.Time) string {
	return now.UTC().Format("20060102T150405.000000000Z") + "-" + strconv.FormatUint(rand.Uint64(), 16)
}

// stagingRoot is the folder of the instance's staged epochs.
func (s *Sink) stagingRoot() string {
	return filepath.Join(s.cfg.Dir, sinkDir, "staging", s.cfg.InstanceID)
}

// stage writes the epoch's files and its manifest.json into a new
// staging folder, fsyncs them, and reopens every file to check it reads
// back as written.
func (s *Sink) stage(e *epoch, id string) (*Manifest, error) {
	m := &Manifest{Epoch: id, Instance: s.cfg.InstanceID, Created: time.Now().UTC()}
	parts := make([]int32, 0, len(e.parts))
	for p := range e.parts {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		pe := e.parts[p]
		m.Spans = append(m.Spans, Span{Partition: p, First: pe.first, Last: pe.last, Next: pe.next, Rows: pe.rows, Rejected: pe.rejected})
		for _, d := range sortedDays(pe.byDay) {
			rows := pe.byDay[d]
			m.Files = append(m.Files, File{
				Path:      filepath.Join(listensDir, "day="+d, fileName(p, pe.first, pe.last)),
				Partition: p,
				Rows:      len(rows),
				First:     rows[0].Offset,
				Last:      rows[len(rows)-1].Offset,
			})
		}
	}
	dir := filepath.Join(s.stagingRoot(), id)
	dayDirs := map[string]bool{}
	for _, f := range m.Files {
		dayDirs[filepath.Dir(f.Path)] = true
	}
	for d := range dayDirs {
		if err := mkdirs(filepath.Join(dir, d)); err != nil {
			return nil, err
		}
	}
	var g errgroup.Group
	// NB: more writers than cores, so that fsyncs overlap encoding.
	g.SetLimit(max(runtime.GOMAXPROCS(0), stageWriters))
	for i := range m.Files {
		f := &m.Files[i]
		g.Go(func() error {
			d := filepath.Base(filepath.Dir(f.Path))
			rows := e.parts[f.Partition].byDay[d[len("day="):]]
			path := filepath.Join(dir, f.Path)
			size, err := writeTable(path, rows)
			if err != nil {
				return err
			}
			f.Bytes = size
			return validateListens(path, f.Rows, f.First, f.Last)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for d := range dayDirs {
		if err := syncDir(filepath.Join(dir, d)); err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(filepath.Join(dir, d))); err != nil {
			return nil, err
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("parquet: manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(dir, manifestFile), b); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return m, nil
}

// stageWriters is the least number of files an epoch writes at once.
const stageWriters = 8

// manifestFile is the name of an epoch's manifest in its staging folder.
// An epoch folder without one was never committed.
const manifestFile = "manifest.json"

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("parquet: write %s: %w", path, err)
	}
	return nil
}

// publish moves the files of a committed epoch from its staging folder
// into the tables, fsyncs the folders they entered, and removes the
// staging folder. It is idempotent: a file already moved (a publish cut
// short by a crash) is left where it is.
func (s *Sink) publish(m *Manifest) error {
	dir := filepath.Join(s.stagingRoot(), m.Epoch)
	synced := map[string]bool{}
	for _, f := range m.Files {
		src, dst := filepath.Join(dir, f.Path), filepath.Join(s.cfg.Dir, f.Path)
		if err := mkdirs(filepath.Dir(dst)); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			if _, serr := os.Stat(src); !errors.Is(serr, os.ErrNotExist) {
				return fmt.Errorf("parquet: publish: %w", err)
			}
			if _, derr := os.Stat(dst); derr != nil {
				return fmt.Errorf("parquet: publish %s: staged file and table file both missing: %w", f.Path, derr)
			}
		}
		if err := s.at("renamed"); err != nil {
			return err
		}
		synced[filepath.Dir(dst)] = false
	}
	for d := range synced {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return s.drop(m.Epoch)
}

// drop removes an epoch's staging folder.
func (s *Sink) drop(id string) error {
	if err := os.RemoveAll(filepath.Join(s.stagingRoot(), id)); err != nil {
		return fmt.Errorf("parquet: remove staged epoch %s: %w", id, err)
	}
	return syncDir(s.stagingRoot())
}

// staged lists the instance's staged epochs, with their manifests (nil
// for an epoch whose manifest.json is missing or unreadable: it was cut
// short before its transaction).
func (s *Sink) staged() (map[string]*Manifest, error) {
	entries, err := os.ReadDir(s.stagingRoot())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	out := map[string]*Manifest{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var m *Manifest
		if b, err := os.ReadFile(filepath.Join(s.stagingRoot(), e.Name(), manifestFile)); err == nil {
			var mm Manifest
			if json.Unmarshal(b, &mm) == nil && mm.Epoch == e.Name() {
				m = &mm
			}
		}
		out[e.Name()] = m
	}
	return out, nil
}
