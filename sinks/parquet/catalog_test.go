package parquet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCatalogTables writes catalog table records (entities with their
// versions, one rolled back, an unreadable value, a deleted entity) and
// checks that the catalog tables hold each entity's current version,
// then that a later change rewrites them.
func TestCatalogTables(t *testing.T) {
	const table = "catalog-table"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, DefaultTopic, table))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(table))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(kv ...string) {
		t.Helper()
		var recs []*kgo.Record
		for i := 0; i < len(kv); i += 2 {
			r := &kgo.Record{Key: []byte(kv[i])}
			if kv[i+1] != "" {
				r.Value = []byte(kv[i+1])
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(
		"song:7", `{"key":"song:7","versions":[{"n":1,"batch":"b1","updated":"2026-11-20T10:00:00Z","title":"Hello","artist_id":3},{"n":2,"batch":"b2","updated":"2026-11-21T10:00:00Z","title":"Wrong","artist_id":3,"rolled_back":"rb"}]}`,
		"song:8", `{"key":"song:8","versions":[{"n":1,"batch":"b1","updated":"2026-11-20T10:00:00Z","title":"Ünïcode \"q\"","artist_id":3}]}`,
		"song:9", `{"key":"song:9","versions":[{"n":1,"batch":"b1","updated":"2026-11-20T10:00:00Z","title":"Gone","artist_id":4}]}`,
		"song:9", "",
		"song:10", `not json`,
		"artist:3", `{"key":"artist:3","versions":[{"n":1,"batch":"b1","updated":"2026-11-20T10:00:00Z","name":"Adele"},{"n":2,"batch":"b3","updated":"2026-11-22T10:00:00Z","name":"ADELE"}]}`,
		"artist:4", `{"key":"artist:4","versions":[{"n":1,"batch":"b1","updated":"2026-11-20T10:00:00Z","name":"X","rolled_back":"rb"}]}`,
	)
	dir := t.TempDir()
	s, err := New(Config{Brokers: brokers, Dir: dir, InstanceID: "a", CatalogTopic: table,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	updated := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixMilli()
	waitTables(t, dir, done,
		[]SongRow{{7, "Hello", 3, 1, "b1", updated}, {8, "Ünïcode \"q\"", 3, 1, "b1", updated}},
		[]ArtistRow{{3, "ADELE", 2, "b3", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli()}})
	produce("song:8", "", "artist:4", `{"key":"artist:4","versions":[{"n":1,"batch":"b1","updated":"2026-11-20T10:00:00Z","name":"X"}]}`)
	waitTables(t, dir, done,
		[]SongRow{{7, "Hello", 3, 1, "b1", updated}},
		[]ArtistRow{{3, "ADELE", 2, "b3", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli()}, {4, "X", 1, "b1", updated}})
}

// waitTables waits until the catalog tables hold exactly songs and
// artists, in id order.
func waitTables(t *testing.T, dir string, done chan error, songs []SongRow, artists []ArtistRow) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("sink stopped: %v", err)
		default:
		}
		gotSongs, err1 := readTable[SongRow](filepath.Join(dir, catalogDir, "songs.parquet"))
		gotArtists, err2 := readTable[ArtistRow](filepath.Join(dir, catalogDir, "artists.parquet"))
		if err := errors.Join(err1, err2); err != nil {
			last = err.Error()
		} else if slices.Equal(gotSongs, songs) && slices.Equal(gotArtists, artists) {
			return
		} else {
			last = "songs " + fmt.Sprintf("%+v", gotSongs) + " artists " + fmt.Sprintf("%+v", gotArtists)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("catalog tables not as expected within a minute; last: %s\nwant songs %s artists %s", last, fmt.Sprintf("%+v", songs), fmt.Sprintf("%+v", artists))
}

func readTable[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return pq.Read[T](bytes.NewReader(b), int64(len(b)))
}
