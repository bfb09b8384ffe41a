package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header keys of a dead letter whose record was too large to keep whole.
const (
	// HeaderTruncated holds the original value's size in bytes when the
	// dead letter carries only the value's first DeadLetterMaxValue bytes.
	HeaderTruncated = "kappa-truncated"
	// HeaderSHA256 holds the hex SHA-256 of the original, whole value of
	// a truncated dead letter.
	HeaderSHA256 = "kappa-sha256"
)

// Limits of a dead letter: together far below the producer's 1 MiB batch
// limit, so a dead letter always fits in its transaction whatever record
// was rejected (a rejected record that did not fit would abort the
// transaction, rewind and fail again forever).
const (
	DeadLetterMaxValue  = 256 << 10
	DeadLetterMaxKey    = 4 << 10
	DeadLetterMaxReason = 4 << 10
)

// deadLetter is the dead letter of rec for topic: its key, value and
// timestamp, with the reason and the source (topic/partition/offset) in
// headers. A key, value or reason over its limit is cut to it; a cut
// value also gets its original size and hash in headers.
func deadLetter(topic string, rec *kgo.Record, reason error) *kgo.Record {
	source := rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10)
	why := reason.Error()
	if len(why) > DeadLetterMaxReason {
		why = why[:DeadLetterMaxReason]
	}
	dl := &kgo.Record{
		Topic:     topic,
		Key:       rec.Key,
		Value:     rec.Value,
		Timestamp: rec.Timestamp,
		Headers: []kgo.RecordHeader{
			{Key: HeaderError, Value: []byte(why)},
			{Key: HeaderSource, Value: []byte(source)},
		},
	}
	if len(dl.Key) > DeadLetterMaxKey {
		dl.Key = dl.Key[:DeadLetterMaxKey]
	}
	if len(rec.Value) > DeadLetterMaxValue {
		sum := sha256.Sum256(rec.Value)
		dl.Value = rec.Value[:DeadLetterMaxValue]
		dl.Headers = append(dl.Headers,
			kgo.RecordHeader{Key: HeaderTruncated, Value: strconv.AppendInt(nil, int64(len(rec.Value)), 10)},
			kgo.RecordHeader{Key: HeaderSHA256, Value: []byte(hex.EncodeToString(sum[:]))})
	}
	return dl
}
