package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/processors/similar"
)

// simModel is what the similarity indexes must hold, computed from the raw
// events and feature records with package lsh's hashing (kappa's default
// configuration), independently of kappa's stages: every user's MinHash
// signature over the artists of their valid listens, every song's latest
// vector, and the buckets of both.
type simModel struct {
	mh      *lsh.MinHash
	hp      *lsh.Hyperplanes
	artists map[int64]map[int64]bool // user → artists played
	vectors map[int64][]float32      // song → latest vector
}

func newSimModel(t testing.TB) *simModel {
	mh, err := lsh.NewMinHash(lsh.MinHashConfig{Bands: similar.DefaultBands, Rows: similar.DefaultRows})
	if err != nil {
		t.Fatal(err)
	}
	hp, err := lsh.NewHyperplanes(lsh.HyperplaneConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &simModel{mh: mh, hp: hp, artists: map[int64]map[int64]bool{}, vectors: map[int64][]float32{}}
}

func (m *simModel) listen(user, artist int64) {
	if m.artists[user] == nil {
		m.artists[user] = map[int64]bool{}
	}
	m.artists[user][artist] = true
}

// feature takes a song-features record as produced: its JSON, parsed
// here with encoding/json.
func (m *simModel) feature(t testing.TB, line []byte) {
	var f struct {
		SongID int64     `json:"song_id"`
		Vector []float64 `json:"vector"`
	}
	if err := json.Unmarshal(line, &f); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(f.Vector))
	for i, x := range f.Vector {
		v[i] = float32(x)
	}
	m.vectors[f.SongID] = v
}

// simIndex is one kind's index: the items (signature slots or vector
// components, as uint32 bits; for users, the artist sets beside them,
// ascending) and the bucket members, ascending.
type simIndex struct {
	items   map[int64][]uint32
	sets    map[int64][]int64
	members map[lsh.Bucket][]int64
}

func (m *simModel) index(t testing.TB, kind byte) simIndex {
	ix := simIndex{items: map[int64][]uint32{}, sets: map[int64][]int64{}, members: map[lsh.Bucket][]int64{}}
	if kind == 'u' {
		for u, set := range m.artists {
			sig := m.mh.Signature(slices.Collect(maps.Keys(set)))
			ix.items[u] = sig
			ix.sets[u] = slices.Sorted(maps.Keys(set))
			for _, b := range m.mh.Buckets(sig, nil) {
				ix.members[b] = append(ix.members[b], u)
			}
		}
	} else {
		for s, v := range m.vectors {
			bits := make([]uint32, len(v))
			for i, x := range v {
				bits[i] = math.Float32bits(x)
			}
			ix.items[s] = bits
			bs, err := m.hp.Buckets(v, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				ix.members[b] = append(ix.members[b], s)
			}
		}
	}
	for _, ids := range ix.members {
		slices.Sort(ids)
	}
	return ix
}

// similar is the answer the model expects to "the k most similar to id":
// the candidates of the query's buckets under the default lsh.Limits
// (members read in ascending id order), those sharing the most buckets
// (users: at least similar.DefaultMinBands, when k do) scored by the
// exact Jaccard of the artist sets (users; 0 left out) or exact cosine
// (songs), best k.
func (m *simModel) similar(ix simIndex, kind byte, id int64, k int) []lsh.Scored {
	var buckets []lsh.Bucket
	if kind == 'u' {
		buckets = m.mh.Buckets(ix.items[id], nil)
	} else {
		buckets, _ = m.hp.Buckets(m.vectors[id], nil)
	}
	c := lsh.NewCandidates(id, lsh.Limits{})
	for _, b := range buckets {
		members := ix.members[b]
		c.Scan(slices.Values(members[:min(len(members), lsh.DefaultPerBucket+1)]))
	}
	var scored []lsh.Scored
	minShared := 1
	if kind == 'u' {
		minShared = similar.DefaultMinBands
	}
	for _, cand := range c.Best(k, minShared) {
		if kind == 'u' {
			if j := jaccard(m.artists[id], m.artists[cand]); j > 0 {
				scored = append(scored, lsh.Scored{ID: cand, Score: j})
			}
		} else {
			scored = append(scored, lsh.Scored{ID: cand, Score: lsh.Cosine(m.vectors[id], m.vectors[cand])})
		}
	}
	return lsh.TopK(scored, k)
}

// jaccard is |a ∩ b| / |a ∪ b|.
func jaccard(a, b map[int64]bool) float64 {
	both := 0
	for x := range a {
		if b[x] {
			both++
		}
	}
	if union := len(a) + len(b) - both; union > 0 {
		return float64(both) / float64(union)
	}
	return 0
}

// checkSimilarChangelog reads the similarity tables of version v1's
// stage-2 stores from their changelog (the stores' truth: a store is its
// changelog applied) and compares them with the model: every item exact,
// and every bucket holding exactly the ids whose current item falls in it
// (stored in chunks of ids): no entry lost or left behind by a signature
// or vector that changed.
func checkSimilarChangelog(t testing.TB, kafka string, m *simModel) {
	t.Helper()
	state := map[string][]byte{}
	for _, r := range readCommitted(t, kafka, "kappa.v1.rollups-changelog") {
		if len(r.Key) == 0 || (r.Key[0] != 0x40 && r.Key[0] != 0x41) {
			continue
		}
		if r.Value == nil {
			delete(state, string(r.Key))
		} else {
			state[string(r.Key)] = r.Value
		}
	}
	for _, kind := range []byte{'u', 's'} {
		want := m.index(t, kind)
		got := simIndex{items: map[int64][]uint32{}, sets: map[int64][]int64{}, members: map[lsh.Bucket][]int64{}}
		for k, v := range state {
			if k[1] != kind {
				continue
			}
			key := []byte(k)
			switch key[0] {
			case 0x41:
				id := int64(binary.BigEndian.Uint64(key[2:]))
				if kind == 'u' {
					// The signature, then the artist set: uvarint count,
					// uvarint gaps from 0.
					sig := v[:min(len(v), 4*m.mh.Len())]
					n, w := binary.Uvarint(v[len(sig):])
					rest, a := v[len(sig)+max(w, 0):], int64(0)
					set := []int64{}
					for range n {
						gap, w := binary.Uvarint(rest)
						rest = rest[max(w, 0):]
						a += int64(gap)
						set = append(set, a)
					}
					got.sets[id], v = set, sig
				}
				words := make([]uint32, len(v)/4)
				for i := range words {
					words[i] = binary.LittleEndian.Uint32(v[4*i:])
				}
				got.items[id] = words
			case 0x40:
				// A chunk of the bucket's members: uvarint count, then
				// uvarint gaps from the chunk's start (key[12:]).
				b := lsh.Bucket{Table: binary.BigEndian.Uint16(key[2:]), Hash: binary.BigEndian.Uint64(key[4:])}
				id := int64(binary.BigEndian.Uint64(key[12:]))
				n, w := binary.Uvarint(v)
				rest := v[w:]
				for range n {
					gap, w := binary.Uvarint(rest)
					rest = rest[w:]
					id += int64(gap)
					got.members[b] = append(got.members[b], id)
				}
			}
		}
		for _, ids := range got.members {
			slices.Sort(ids)
		}
		if !maps.EqualFunc(got.items, want.items, slices.Equal) || !maps.EqualFunc(got.sets, want.sets, slices.Equal) {
			wrong := 0
			for id, w := range want.items {
				if !slices.Equal(got.items[id], w) || !slices.Equal(got.sets[id], want.sets[id]) {
					wrong++
				}
			}
			t.Errorf("kind %c: the changelog holds %d items, the model %d; %d missing or different", kind, len(got.items), len(want.items), wrong)
		}
		var stale, missing int
		for b, ids := range got.members {
			for _, id := range ids {
				if _, ok := slices.BinarySearch(want.members[b], id); !ok {
					stale++
				}
			}
		}
		entries := 0
		for b, ids := range want.members {
			entries += len(ids)
			for _, id := range ids {
				if _, ok := slices.BinarySearch(got.members[b], id); !ok {
					missing++
				}
			}
		}
		if stale+missing > 0 || entries == 0 {
			t.Errorf("kind %c: bucket entries: %d left behind, %d missing, of %d", kind, stale, missing, entries)
		}
	}
}

// similarAnswer is an answer of GET /v1/users|songs/{id}/similar.
type similarAnswer struct {
	UserID  int64 `json:"user_id"`
	SongID  int64 `json:"song_id"`
	Similar []struct {
		UserID int64   `json:"user_id"`
		SongID int64   `json:"song_id"`
		Score  float64 `json:"score"`
	} `json:"similar"`
}

func (a similarAnswer) scored() []lsh.Scored {
	var out []lsh.Scored
	for _, s := range a.Similar {
		out = append(out, lsh.Scored{ID: s.UserID + s.SongID, Score: s.Score})
	}
	return out
}

// checkSimilarAnswers asks every instance for the ids' similar users or
// songs and compares each answer with the model's.
func checkSimilarAnswers(t testing.TB, instances []*instance, m *simModel, kind byte, ids []int64) {
	t.Helper()
	ix := m.index(t, kind)
	path := "/v1/users/"
	if kind == 's' {
		path = "/v1/songs/"
	}
	wrong := 0
	for i, id := range ids {
		c := newClient(instances[i%len(instances)].http)
		var a similarAnswer
		if _, err := c.getJSON(path+itoa(id)+"/similar?k=10", &a); err != nil {
			t.Fatal(err)
		}
		got, want := a.scored(), m.similar(ix, kind, id, 10)
		if a.UserID+a.SongID != id || !slices.Equal(got, want) {
			if wrong++; wrong <= 3 {
				t.Errorf("%s%d/similar: %v, want %v", path, id, got, want)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d answers of %s…/similar differ from the model", wrong, len(ids), path)
	}
}

// produceFeatures produces song-features records (JSON lines keyed by
// song id) and adds them to the model.
func produceFeatures(t testing.TB, kafka string, m *simModel, lines [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("song-features"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(lines))
	for i, line := range lines {
		var f struct {
			SongID int64 `json:"song_id"`
		}
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Key: strconv.AppendInt(nil, f.SongID, 10), Value: line}
		m.feature(t, line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestSimilar runs two instances with --similar (users published 2 s
// after their signature changed) while generated listens
// (taste clusters) and the songs' feature vectors are produced, and kills
// each instance with SIGKILL once, mid-stream, restarting it at once.
// Then the similarity tables (from the changelog) hold exactly every
// user's signature and song's vector the raw events give, and exactly
// their bucket entries, and both instances answer sampled queries as the
// model does (each reading the other's partitions). Then new listens and
// a changed vector arrive, and the answers follow: a new user who plays
// exactly another's artists gets that user with score 1, a song whose
// vector now points the way of another's gets it first (cosine ≈ 1), and the
// entries of the song's old buckets are gone.
func TestSimilar(t *testing.T) {
	cfg := testConfig(150_000)
	cfg.Users = 5_000
	d := generateDataset(t, cfg)
	m := newSimModel(t)
	for l := range d.valid(t) {
		m.listen(l.UserID, l.ArtistID)
	}
	g, err := generate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var features [][]byte
	for id, v := range g.SongFeatures(lsh.DefaultDim) {
		features = append(features, generate.AppendFeature(nil, id, v))
	}

	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)
	instances := []*instance{newInstance(t, kafka, "a"), newInstance(t, kafka, "b")}
	for _, in := range instances {
		in.args = append(in.args, "--similar", "--similar-delay", "2s")
		in.start(t)
	}
	for _, in := range instances {
		waitReady(t, in.http)
	}
	produceFeatures(t, kafka, m, features)
	f := startFeeder(t, kafka, d, len(d.lines), 1_000, 20*time.Millisecond)
	for i, in := range instances {
		f.waitProduced(t, int64(len(d.lines)*(i+1)/3))
		in.mustRun(t)
		in.p.stop(t, syscall.SIGKILL)
		in.start(t)
	}
	n := int64(len(d.lines))
	f.waitProduced(t, n)
	waitGroupCaughtUp(t, kafka, "kappa.v1.features", "song-features")
	waitCaughtUp(t, kafka, n, 3*time.Minute, addrs(instances)...)
	waitCaughtUp(t, kafka, n, 3*time.Minute, addrs(instances)...)
	checkSimilarChangelog(t, kafka, m)

	rng := rand.New(rand.NewPCG(7, 7))
	users := slices.Sorted(maps.Keys(m.artists))
	songs := slices.Sorted(maps.Keys(m.vectors))
	sample := func(ids []int64, k int) []int64 {
		out := make([]int64, k)
		for i := range out {
			out[i] = ids[rng.IntN(len(ids))]
		}
		return out
	}
	checkSimilarAnswers(t, instances, m, 'u', sample(users, 200))
	checkSimilarAnswers(t, instances, m, 's', sample(songs, 200))

	// Updates: user X plays exactly the artists of user Y; song A takes
	// twice the vector of song B (as five-digit decimals: nearly).
	var y int64
	for _, u := range users {
		if len(m.artists[u]) >= 4 {
			y = u
			break
		}
	}
	x := int64(cfg.Users) + 1
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("listens"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, artist := range slices.Sorted(maps.Keys(m.artists[y])) {
		line := fmt.Appendf(nil, `{"user_id":%d,"song_id":1,"artist_id":%d,"ts":1772323200000}`, x, artist)
		recs = append(recs, &kgo.Record{Key: []byte(itoa(x)), Value: line})
		m.listen(x, artist)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	songA, songB := songs[0], songs[len(songs)/2]
	twice := make([]float32, len(m.vectors[songB]))
	for i, v := range m.vectors[songB] {
		twice[i] = 2 * v
	}
	produceFeatures(t, kafka, m, [][]byte{generate.AppendFeature(nil, songA, twice)})
	waitGroupCaughtUp(t, kafka, "kappa.v1.features", "song-features")
	waitCaughtUp(t, kafka, n+int64(len(recs)), time.Minute, addrs(instances)...)
	waitCaughtUp(t, kafka, n+int64(len(recs)), time.Minute, addrs(instances)...)

	var ax, aa similarAnswer
	if _, err := newClient(instances[0].http).getJSON("/v1/users/"+itoa(x)+"/similar?k=100", &ax); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ax.scored(), lsh.Scored{ID: y, Score: 1}) {
		t.Errorf("user %d plays exactly the artists of user %d, but its similar users are %v", x, y, ax.scored())
	}
	if _, err := newClient(instances[1].http).getJSON("/v1/songs/"+itoa(songA)+"/similar?k=1", &aa); err != nil {
		t.Fatal(err)
	}
	if got := aa.scored(); len(got) != 1 || got[0].ID != songB || got[0].Score < 0.99999 {
		t.Errorf("song %d points the way of song %d, but its most similar song is %v", songA, songB, got)
	}
	checkSimilarAnswers(t, instances, m, 'u', []int64{x, y})
	checkSimilarAnswers(t, instances, m, 's', []int64{songA, songB})
	checkSimilarChangelog(t, kafka, m)
}
