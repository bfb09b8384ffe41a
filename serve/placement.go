package serve

import "github.com/kappa-stream/kappa/state"

// Placement says where the state of a partition key is served. The key is
// the repartition key a processor's stage-2 input is partitioned by (for
// the rollups, rollups.PartitionKey).
type Placement interface {
	// Locate finds key's owner. It never blocks on the network.
	Locate(key []byte) Location
}

// Location is the answer of Placement.Locate. At most one of Store and
// Owner is set; neither means the partition is not servable right now (a
// rebalance or a restore is in progress) and the request gets 503 with
// Retry-After.
type Location struct {
	// Store is set when this instance owns the partition and its store is
	// restored and current. The caller reads it and then calls Release;
	// the store stays open until then. Release is set whenever Store is,
	// and the server calls it exactly once per Locate that returned a
	// Store, also when the read fails.
	Store   *state.Store
	Release func()
	// Owner is the base URL ("http://10.0.0.7:8080") of the instance that
	// owns the partition, when that is another instance. The server
	// forwards the request there, once: a request that was already
	// forwarded and finds another owner here gets 503.
	Owner string
}
