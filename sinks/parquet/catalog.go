package parquet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/catalog"
)

// SongRow is one row of catalog/songs.parquet: a song's current version.
type SongRow struct {
	SongID   int64  `parquet:"song_id"`
	Title    string `parquet:"title"`
	ArtistID int64  `parquet:"artist_id"`
	Version  int32  `parquet:"version"`
	Batch    string `parquet:"batch"`
	Updated  int64  `parquet:"updated,timestamp(millisecond:utc)"`
}

// ArtistRow is one row of catalog/artists.parquet: an artist's current
// version.
type ArtistRow struct {
	ArtistID int64  `parquet:"artist_id"`
	Name     string `parquet:"name"`
	Version  int32  `parquet:"version"`
	Batch    string `parquet:"batch"`
	Updated  int64  `parquet:"updated,timestamp(millisecond:utc)"`
}

// catalogIdle is how long the catalog topic must be quiet before the
// tables are rewritten after a change (a feed batch is one rewrite), and
// catalogMaxDelay how long a change waits at most while it never is.
const (
	catalogIdle     = time.Second
	catalogMaxDelay = 30 * time.Second
)

// runCatalog follows the catalog's table topic from its start and
// rewrites the catalog tables whenever it has changed and gone quiet, or
// changed catalogMaxDelay ago.
func (s *Sink) runCatalog(ctx context.Context) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumeTopics(s.cfg.CatalogTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, s.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("parquet: catalog client: %w", err)
	}
	defer cl.Close()
	current := map[string]catalog.Version{}
	var dirtySince time.Time
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, catalogIdle)
		fetches := cl.PollFetches(pctx)
		cancel()
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.cfg.Logger.Warn("parquet sink: catalog fetch error", "topic", topic, attrPartition, p, "err", err)
			}
		})
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			if dirtySince.IsZero() {
				dirtySince = time.Now()
			}
			key := string(r.Key)
			if r.Value == nil {
				delete(current, key)
				return
			}
			ent, err := catalog.DecodeEntity(r.Value)
			if err != nil {
				s.cfg.Logger.Warn("parquet sink: undecodable catalog table record; skipped", attrPartition, r.Partition, "offset", r.Offset, "err", err)
				return
			}
			if v, ok := ent.Current(); ok {
				current[key] = v
			} else {
				delete(current, key)
			}
		})
		if !dirtySince.IsZero() && (n == 0 || time.Since(dirtySince) >= catalogMaxDelay) && ctx.Err() == nil {
			if err := s.writeCatalog(current); err != nil {
				return err
			}
			dirtySince = time.Time{}
		}
	}
	return nil
}

// writeCatalog rewrites both catalog tables from the current versions,
// each atomically: written and fsynced outside the table, then renamed
// over the old file.
func (s *Sink) writeCatalog(current map[string]catalog.Version) error {
	var songs []SongRow
	var artists []ArtistRow
	for key, v := range current {
		kind, idText, _ := strings.Cut(key, ":")
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			continue
		}
		switch kind {
		case catalog.KindSong:
			songs = append(songs, SongRow{SongID: id, Title: v.Title, ArtistID: v.ArtistID, Version: int32(v.N), Batch: v.Batch, Updated: v.Updated.UnixMilli()})
		case catalog.KindArtist:
			artists = append(artists, ArtistRow{ArtistID: id, Name: v.Name, Version: int32(v.N), Batch: v.Batch, Updated: v.Updated.UnixMilli()})
		}
	}
	slices.SortFunc(songs, func(a, b SongRow) int { return cmp.Compare(a.SongID, b.SongID) })
	slices.SortFunc(artists, func(a, b ArtistRow) int { return cmp.Compare(a.ArtistID, b.ArtistID) })
	if err := replaceTable(s, "songs.parquet", songs); err != nil {
		return err
	}
	if err := replaceTable(s, "artists.parquet", artists); err != nil {
		return err
	}
	s.m.catalogWrites.Add(context.Background(), 1)
	s.cfg.Logger.Info("parquet sink: catalog tables written", "songs", len(songs), "artists", len(artists))
	return nil
}

// replaceTable writes rows to catalog/<name> atomically.
func replaceTable[T any](s *Sink, name string, rows []T) error {
	tmpDir := filepath.Join(s.cfg.Dir, sinkDir, "tmp", s.cfg.InstanceID)
	dstDir := filepath.Join(s.cfg.Dir, catalogDir)
	if err := mkdirs(tmpDir); err != nil {
		return err
	}
	if err := mkdirs(dstDir); err != nil {
		return err
	}
	tmp := filepath.Join(tmpDir, name)
	if _, err := writeTable(tmp, rows); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dstDir, name)); err != nil {
		return fmt.Errorf("parquet: replace %s: %w", name, err)
	}
	return syncDir(dstDir)
}
