package topology

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKeyPartition places keys as franz-go's keyed partitioner does.
func TestKeyPartition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 12, 100} {
		p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
		for i := range 2000 {
			key := make([]byte, i%40)
			for j := range key {
				key[j] = byte(rng.IntN(256))
			}
			if got, want := KeyPartition(key, n), int32(p.Partition(&kgo.Record{Key: key}, n)); got != want {
				t.Fatalf("key %x of %d partitions: %d, want %d", key, n, got, want)
			}
		}
	}
}
