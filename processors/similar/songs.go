package similar

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// FeatureTask is the features stage of similar songs for one partition of
// song-features: it keeps the latest vector of each of the partition's
// songs in its store and sends the changes of each commit interval to
// stage 2. A record that is not a valid feature record is rejected (to the
// dead letters) and changes nothing.
type FeatureTask struct {
	ix      *Index
	store   *state.Store
	e       emitter
	pending map[int64][]float32 // the interval's latest vector per song
	key     []byte
	val     []byte
	stored  []float32
	old     []lsh.Bucket
	new     []lsh.Bucket
}

// NewFeatureTask returns the task of a partition of song-features over its
// store, sending to topic, which has the given number of partitions.
func (ix *Index) NewFeatureTask(s *state.Store, topic string, partitions int32) *FeatureTask {
	return &FeatureTask{ix: ix, store: s, e: newEmitter(topic, partitions), pending: map[int64][]float32{}}
}

// Process reads one song-features record.
func (t *FeatureTask) Process(rec *kgo.Record) error {
	f, err := events.DecodeFeature(rec.Key, rec.Value, t.ix.Dim())
	if err != nil {
		return err
	}
	t.pending[f.SongID] = f.Vector
	return nil
}

// Prepare writes the songs whose vector changed and sends them and their
// bucket changes to stage 2.
func (t *FeatureTask) Prepare(out *topology.Output) error {
	t.e.start(out)
	defer t.e.flush()
	for _, id := range slices.Sorted(maps.Keys(t.pending)) {
		v := t.pending[id]
		t.key = vectorKey(t.key[:0], id)
		stored, found, err := t.store.Get(t.val[:0], t.key)
		if err != nil {
			return err
		}
		t.val = stored
		t.old = t.old[:0]
		if found {
			if t.stored, err = events.ParseVector(t.stored, stored, t.ix.Dim()); err != nil {
				return corrupt("vector of song %d: %v", id, err)
			}
			if slices.Equal(t.stored, v) {
				continue
			}
			// NB: a stored vector was checked when it came: no error.
			t.old, _ = t.ix.hp.Buckets(t.stored, t.old)
		}
		// NB: DecodeFeature checked the dimension and finiteness.
		t.new, _ = t.ix.hp.Buckets(v, t.new[:0])
		t.val = events.AppendVector(t.val[:0], v)
		out.Put(t.key, t.val)
		t.e.item(Songs, id, t.val)
		left, joined := lsh.Diff(t.old, t.new)
		t.e.members(Songs, id, left, joined)
	}
	clear(t.pending)
	return nil
}

func vectorKey(dst []byte, id int64) []byte {
	return state.AppendUint64(append(dst, tableVector), uint64(id))
}

// vector decodes a stored vector of the index's dimension.
func (ix *Index) vector(b []byte) ([]float32, error) {
	return events.ParseVector(nil, b, ix.Dim())
}
