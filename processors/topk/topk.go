// Package topk answers exact top-K queries: the artists or songs with the
// most plays (or streams) over any inclusive range of days, over all
// countries or in one.
//
// # An index over the rollups' day rows
//
// The rollups' stage 2 keeps, per (song | artist, day), a day row with the
// exact plays and streams of each country (processors/rollups). Top-K adds
// a rank index beside those rows, in the same stores: per (entity, week,
// country) — and per (entity, week, all countries) — a list of the ids
// with plays that week, in decreasing order of a bucket of their plays:
//
//	0x50 | entity | week | country | ^bucket | id  →  (empty)
//
// entity is 's' (songs) or 'a' (artists), week (the 7-day periods from
// 1970-01-01) 4 and id 8 big-endian bytes, country the two letters or two
// zero bytes for all countries (the listens without a country are counted
// in all countries only), and bucket (2 bytes, complemented so that bigger
// counts come first) a logarithmic bucket of the plays: exact below 4,
// then two buckets per doubling (bucketOf). A count change moves the id's
// key only when it crosses into another bucket, so a song played all week
// moves a few dozen times instead of once per commit interval. Streams
// have no lists of their own: a stream is a play, so the plays' buckets
// bound the streams too, and a ranking by streams reads the same lists (a
// little deeper).
//
// Why weeks and coarse buckets: every write of the index is a changelog
// record too, and on a Zipf load most listens are of songs played once or
// twice in a day or week, each such listen inserting or moving its song
// in two lists (its country's and all countries'). Lists per week rather
// than per day insert a song once a week instead of once a day it is
// played, and a 31-day range merges 5 or 6 lists instead of 31; coarse
// buckets move a key once per half doubling of its count. A range's
// bounds come from the weeks it overlaps: an id's plays in a week bound
// its plays in the range's days of it.
//
// Indexer keeps the index: the rollups' AggregateTask tells it of every
// day row it writes, with the old and new value (rollups.RowObserver), and
// it moves the keys of those rows' weeks — their totals read from the
// week's day rows — in the same Output. So the index and the rows are in
// one transaction, one store batch and one changelog: they are exact
// together through kill -9, rebalances, restores and replays, with no
// stage 1 and no records of their own. Check verifies that the index and
// the rows are one-to-one.
//
// # Answering a range
//
// Top answers a Query from one store by Fagin's threshold algorithm over
// the lists of the weeks the range overlaps: it reads the lists in rounds,
// in bucket order (sorted access), keeps for each id read the largest
// total it can have (the ceilings of its entries read plus the current
// ceilings of the other lists), reads an id's exact counts over the range
// from its day rows (random access: one seek, at most one row per day)
// only when that bound can still put it among the best K, and stops once
// the K-th best exact total is above the sum of the lists' current
// ceilings, the most an unread id can have. It never sums every row of
// the range.
//
// # Exactness across partitions
//
// An id's day rows, and so its index entries, are in exactly one stage-2
// partition: the one its rollups.PartitionKey routes to. The partitions
// count disjoint sets of ids, so the global top K is among the union of
// the partitions' top K, and Merge of the partitions' answers is exact.
//
// Answers list the ids whose count of the chosen measure in the range is
// positive, at most K, by that count descending, ties by id ascending.
// Retention follows the rollups': the index lives as long as the rows.
//
// # The songs of an artist
//
// The rollups' song rows do not say under which artist_id a song was
// played, so the top songs of an artist come from rows of their own, in
// two stages (SongCollector, SongTask; songs.go) in the artist's stage-2
// partition, and ArtistSongs sums the artist's rows over the range.
//
// Tables: 0x50 (the rank index), 0x51 (the artists' songs); records of
// the repartition topic: SongFormat (0x54).
package topk

import (
	"math/bits"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

// tableRank is the first byte of the rank index's keys.
const tableRank byte = 0x50

// By is the measure a ranking orders by.
type By uint8

const (
	// Plays ranks by plays (every valid listen).
	Plays By = iota
	// Streams ranks by streams (plays of at least 30 s).
	Streams
)

func entityByte(e rollups.Entity) byte {
	if e == rollups.Artist {
		return 'a'
	}
	return 's'
}

// rankKeyLen is the length of a rank key.
const rankKeyLen = listPrefixLen + 2 + 8

// listPrefixLen is the length of a list's prefix.
const listPrefixLen = 1 + 1 + 4 + 2

// weekDays is the length of the periods the lists rank ids over.
const weekDays = 7

// weekOf is the week of day (≥ 0): weeks are the 7-day periods counted
// from 1970-01-01 (a Thursday).
func weekOf(day int32) int32 { return day / weekDays }

// listPrefix appends the prefix of the list of (e, week w, c); the zero
// Country c is all countries.
func listPrefix(dst []byte, e rollups.Entity, w int32, c events.Country) []byte {
	dst = append(dst, tableRank, entityByte(e))
	dst = state.AppendUint32(dst, uint32(w))
	return append(dst, c[0], c[1])
}

// rankKey appends the key of id with n plays in the list of (e, w, c).
func rankKey(dst []byte, e rollups.Entity, w int32, c events.Country, n, id int64) []byte {
	b := ^bucketOf(n)
	dst = append(listPrefix(dst, e, w, c), byte(b>>8), byte(b))
	return state.AppendUint64(dst, uint64(id))
}

// parseRank reads the ceiling of the count and the id of a rank key.
func parseRank(key []byte) (ceil, id int64) {
	b := ^(uint16(key[listPrefixLen])<<8 | uint16(key[listPrefixLen+1]))
	return ceiling(b), int64(state.Uint64(key, listPrefixLen+2))
}

// mantissaBits is the number of bits of a count its bucket keeps after the
// leading one: a bucket spans at most 1/2^mantissaBits of its counts.
const mantissaBits = 1

// exactBelow is the count under which buckets are exact counts.
const exactBelow = 2 << mantissaBits

// bucketOf is the bucket of count n ≥ 1: n itself below exactBelow, then
// 2^mantissaBits buckets per doubling. Buckets grow with counts.
func bucketOf(n int64) uint16 {
	if n < exactBelow {
		return uint16(n)
	}
	shift := bits.Len64(uint64(n)) - (mantissaBits + 1)
	return uint16(shift<<mantissaBits) + uint16(n>>shift)
}

// ceiling is the largest count of bucket b.
func ceiling(b uint16) int64 {
	if b < exactBelow {
		return int64(b)
	}
	shift := int(b>>mantissaBits) - 1
	mant := uint64(b&(1<<mantissaBits-1)) | 1<<mantissaBits
	return int64((mant+1)<<shift - 1)
}
