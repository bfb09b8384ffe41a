package topology

import (
	"encoding/binary"
	"testing"
)

// testHead writes 'H', the partition, the entry count and the last flag.
func testHead(dst []byte, p int32, n int, last bool) []byte {
	dst = append(dst, 'H', byte(p))
	dst = binary.AppendUvarint(dst, uint64(n))
	if last {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// parseTestRecord splits a record of testHead and 8-byte entries.
func parseTestRecord(t *testing.T, v []byte) (p int32, entries []uint64, last bool) {
	t.Helper()
	if len(v) < 4 || v[0] != 'H' {
		t.Fatalf("record %x: no header", v)
	}
	p = int32(v[1])
	n, k := binary.Uvarint(v[2:])
	last = v[2+k] == 1
	body := v[3+k:]
	if len(body) != int(n)*8 {
		t.Fatalf("record of partition %d: header says %d entries, body has %d bytes", p, n, len(body))
	}
	for i := range int(n) {
		entries = append(entries, binary.BigEndian.Uint64(body[8*i:]))
	}
	return p, entries, last
}

func TestPackerCapsRecords(t *testing.T) {
	const partitions, maxRecord = 4, 1 << 10
	for _, tc := range []struct {
		name    string
		entries map[int32]int // entries per partition
		every   bool
	}{
		{"nothing", nil, false},
		{"nothing, every partition", nil, true},
		{"one small record", map[int32]int{2: 3}, false},
		{"past the cap", map[int32]int{0: 1000, 3: 129}, false},
		{"far past the limit, every partition", map[int32]int{1: 300_000}, true},
		{"exactly the cap", map[int32]int{1: maxRecord / 8}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk := NewPacker("t", partitions, testHead, maxRecord)
			for round := range 2 { // a second interval reuses the buffers
				var out Output
				pk.Start(&out)
				next := map[int32]uint64{}
				for p := range int32(partitions) {
					for range tc.entries[p] {
						b := pk.To(p)
						*b = binary.BigEndian.AppendUint64(*b, uint64(p)<<32|next[p])
						next[p]++
					}
				}
				pk.Flush(tc.every)
				got := map[int32][]uint64{}
				records := map[int32]int{}
				for _, r := range out.Records() {
					if r.Topic != "t" {
						t.Fatalf("record for topic %q", r.Topic)
					}
					if len(r.Value) > maxRecord+8+8 {
						t.Errorf("round %d: record of %d bytes, cap %d", round, len(r.Value), maxRecord)
					}
					p, es, last := parseTestRecord(t, r.Value)
					if p != r.Partition {
						t.Fatalf("header of partition %d in a record for %d", p, r.Partition)
					}
					records[p]++
					if last != (records[p] == 1+(tc.entries[p]-1)/(maxRecord/8)) && tc.entries[p] > 0 {
						t.Errorf("round %d partition %d record %d: last = %v", round, p, records[p], last)
					}
					got[p] = append(got[p], es...)
				}
				for p := range int32(partitions) {
					want := tc.entries[p]
					if len(got[p]) != want {
						t.Fatalf("round %d partition %d: %d entries arrived, sent %d", round, p, len(got[p]), want)
					}
					for i, e := range got[p] {
						if e != uint64(p)<<32|uint64(i) {
							t.Fatalf("round %d partition %d: entry %d is %x (order or content lost)", round, p, i, e)
						}
					}
					switch {
					case want == 0 && tc.every && records[p] != 1:
						t.Errorf("round %d partition %d: %d records, want one header-only record", round, p, records[p])
					case want == 0 && !tc.every && records[p] != 0:
						t.Errorf("round %d partition %d: %d records without entries", round, p, records[p])
					}
				}
			}
		})
	}
}
