package generate

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// jaccard returns |a ∩ b| / |a ∪ b| of two sorted sets.
func jaccard(a, b []int64) float64 {
	var i, j, both int
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			both++
			i++
			j++
		}
	}
	return float64(both) / float64(len(a)+len(b)-both)
}

// TestTasteClusters checks that users of one taste cluster share artists,
// over the sets of artists that active users (5+ distinct artists) play:
// two users of one cluster are several times more similar (Jaccard) than
// two random users, and many users have a close nearest neighbour. With
// favourites drawn per user, without clusters, the ratio would be about 1
// and few users (about 7%) would have a neighbour that close.
func TestTasteClusters(t *testing.T) {
	const users, events = 5_000, 200_000
	g, err := New(Config{Users: users, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	sets := make([][]int64, users+1) // user id → sorted artist ids
	var buf []byte
	for range events {
		buf, _ = g.Next(buf[:0])
		ev, err := parseListen(buf)
		if err != nil {
			t.Fatal(err)
		}
		if i, found := slices.BinarySearch(sets[ev.user], ev.artist); !found {
			sets[ev.user] = slices.Insert(sets[ev.user], i, ev.artist)
		}
	}
	var active []int
	byCluster := map[uint64][]int{}
	listeners := map[int64][]int{} // artist id → active users
	for u, s := range sets {
		if len(s) < 5 {
			continue
		}
		active = append(active, u)
		c := g.cluster(g.profile(int64(u), 0).taste)
		byCluster[c] = append(byCluster[c], u)
		for _, a := range s {
			listeners[a] = append(listeners[a], u)
		}
	}
	if len(active) < users/2 {
		t.Fatalf("only %d of %d users play 5+ artists", len(active), users)
	}

	var same, random []float64
	for _, us := range byCluster {
		for i, a := range us {
			for _, b := range us[i+1:] {
				same = append(same, jaccard(sets[a], sets[b]))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		a, b := active[r.IntN(len(active))], active[r.IntN(len(active))]
		if a != b {
			random = append(random, jaccard(sets[a], sets[b]))
		}
	}

	// The exact nearest neighbour of every active user: intersections
	// counted through the artists' listeners.
	both := make([]int, users+1)
	var close int
	for _, u := range active {
		var best float64
		for _, a := range sets[u] {
			for _, v := range listeners[a] {
				both[v]++
			}
		}
		for _, a := range sets[u] {
			for _, v := range listeners[a] {
				if n := both[v]; n > 0 && v != u {
					best = max(best, float64(n)/float64(len(sets[u])+len(sets[v])-n))
				}
				both[v] = 0
			}
		}
		if best >= 0.4 {
			close++
		}
	}

	ratio := mean(same) / mean(random)
	share := float64(close) / float64(len(active))
	t.Logf("%d active users in %d clusters: mean Jaccard %.3f in a cluster, %.3f at random (%.1f×); nearest neighbour ≥ 0.4 for %.2f",
		len(active), len(byCluster), mean(same), mean(random), ratio, share)
	if ratio < 3 {
		t.Errorf("users of one cluster %.1f× as similar as random users, want ≥ 3×", ratio)
	}
	if share < 0.35 {
		t.Errorf("%.2f of active users have a neighbour with Jaccard ≥ 0.4, want ≥ 0.35", share)
	}
}
