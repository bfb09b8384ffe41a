package parquet

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kappa-stream/kappa/events"
)

// Row is one row of the listens table: a valid listen, where it is in the
// log, and whether it is a stream. Country and EventID are null when
// absent; Lat and Lng are null together when the listen has no location.
// The day partition column comes from the file's folder (day=YYYY-MM-DD),
// the UTC day of TS.
type Row struct {
	UserID    int64    `parquet:"user_id"`
	SongID    int64    `parquet:"song_id"`
	ArtistID  int64    `parquet:"artist_id"`
	TS        int64    `parquet:"ts,timestamp(millisecond:utc)"`
	MsPlayed  int32    `parquet:"ms_played"`
	Stream    bool     `parquet:"stream"`
	Country   string   `parquet:"country,optional,dict"`
	Lat       *float64 `parquet:"lat,optional"`
	Lng       *float64 `parquet:"lng,optional"`
	EventID   string   `parquet:"event_id,optional"`
	Partition int32    `parquet:"kafka_partition"`
	Offset    int64    `parquet:"kafka_offset"`
}

// rowOf is the row of listen l read at partition p, offset off, without
// its location (Lat and Lng nil).
func rowOf(l *events.Listen, p int32, off int64) Row {
	r := Row{
		UserID:    l.UserID,
		SongID:    l.SongID,
		ArtistID:  l.ArtistID,
		TS:        l.TS,
		MsPlayed:  l.MsPlayed,
		Stream:    l.IsStream(),
		EventID:   l.EventID,
		Partition: p,
		Offset:    off,
	}
	if !l.Country.IsZero() {
		r.Country = l.Country.String()
	}
	return r
}

// dayOf is the Hive partition value of a row: its UTC day, YYYY-MM-DD.
func dayOf(ts int64) string {
	return time.UnixMilli(ts).UTC().Format(time.DateOnly)
}

// createdBy is the writer name in every file's footer. NB: fixed, not
// parquet-go's default (the module version from the build info), so that
// a file's bytes depend on its rows alone.
const createdBy = "kappa sinks/parquet"

// writerOptions are the settings every engine reads (DuckDB, Spark,
// Trino, Iceberg and Snowflake readers): data pages v1, strings plain or
// dictionary-encoded, zstd.
func writerOptions() []pq.WriterOption {
	return []pq.WriterOption{
		&pq.WriterConfig{CreatedBy: createdBy},
		pq.DataPageVersion(1),
		pq.Compression(&zstd.Codec{}),
		// NB: parquet-go's default for strings is DELTA_LENGTH_BYTE_ARRAY.
		pq.DefaultEncodingFor(pq.ByteArray, &pq.Plain),
	}
}

// errInvalidFile marks a staged file that does not read back as written.
var errInvalidFile = errors.New("parquet: staged file does not read back as written")

// writeTable writes rows to path as one Parquet file of type T and
// fsyncs it. The bytes depend on rows alone.
func writeTable[T any](path string, rows []T) (size int64, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, fmt.Errorf("parquet: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("parquet: close %s: %w", path, cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := encode(bw, rows); err != nil {
		return 0, fmt.Errorf("parquet: write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("parquet: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("parquet: fsync %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("parquet: %w", err)
	}
	return st.Size(), nil
}

// encode writes rows as one Parquet file to w.
func encode[T any](w io.Writer, rows []T) error {
	pw := pq.NewGenericWriter[T](w, writerOptions()...)
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	return pw.Close()
}

// validateListens reopens a staged listens file and checks that it holds
// rows rows whose kafka_offset spans first … last: the footer, the row
// count and the offset column's statistics read back as written.
func validateListens(path string, rows int, first, last int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errInvalidFile, path, err)
	}
	if n := pf.NumRows(); n != int64(rows) {
		return fmt.Errorf("%w: %s: %d rows, want %d", errInvalidFile, path, n, rows)
	}
	col, ok := pf.Schema().Lookup("kafka_offset")
	if !ok {
		return fmt.Errorf("%w: %s: no kafka_offset column", errInvalidFile, path)
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i, rg := range pf.Metadata().RowGroups {
		s := rg.Columns[col.ColumnIndex].MetaData.Statistics
		if len(s.MinValue) != 8 || len(s.MaxValue) != 8 {
			return fmt.Errorf("%w: %s: row group %d has no kafka_offset statistics", errInvalidFile, path, i)
		}
		// NB: statistics of an INT64 column are its plain encoding.
		lo = min(lo, int64(binary.LittleEndian.Uint64(s.MinValue)))
		hi = max(hi, int64(binary.LittleEndian.Uint64(s.MaxValue)))
	}
	if lo != first || hi != last {
		return fmt.Errorf("%w: %s: kafka_offset spans %d…%d, want %d…%d", errInvalidFile, path, lo, hi, first, last)
	}
	return nil
}

// sortedDays are the keys of byDay in order.
func sortedDays[T any](byDay map[string]T) []string {
	days := make([]string, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	slices.Sort(days)
	return days
}

// syncDir fsyncs a directory, so that the entries created or renamed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("parquet: fsync %s: %w", dir, err)
	}
	return nil
}

// mkdirs creates dir and its missing parents, fsyncing each parent that
// got a new entry.
func mkdirs(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirs(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("parquet: %w", err)
	}
	return syncDir(parent)
}
