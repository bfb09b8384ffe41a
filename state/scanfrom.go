package state

// ScanFrom calls fn, in order, for the keys with prefix from start on,
// until fn returns false; the slices passed to fn are valid only during
// the call. It seeks once, forwards, so that a reader can walk several
// ranges in turns (a merge of sorted lists), each resumed after the last
// key it gave.
//
// REQUIRES: start has prefix.
func (r *SortedReader) ScanFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	return r.scan(r.it.SeekGE(start), prefix, fn)
}
