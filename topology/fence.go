package topology

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errFenced is the reason a transaction with output but no input
// offsets is aborted: this member is no longer the group's current one
// (a zombie).
var errFenced = errors.New("topology: fenced by the group generation")

// fence puts the dirty workers' committed offsets, unchanged, into the
// open transaction (TxnOffsetCommit with the member's group generation),
// for a transaction that has output but consumed nothing: the session
// sends no offsets then, so no one checks that this member still owns
// the partitions, and a zombie (an instance that was stopped past its
// session timeout) would publish what the partitions' new owner
// publishes too. An error that is not the broker's refusal (a lost
// connection) is returned as is; either way the transaction must abort.
func fence(ctx context.Context, cl *kgo.Client, group, instanceID, topic string, dirty map[int32]*worker) error {
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, w := range dirty {
		if at := w.committed.Load(); at >= 0 {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, at, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	if len(rt.Partitions) == 0 {
		return nil
	}
	// NB: TxnOffsetCommit v6 names topics by id.
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("topology: topic id of %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return fmt.Errorf("topology: topic id of %s: not found", topic)
	}
	rt.TopicID = d.ID
	txnID := group + "." + instanceID
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("topology: producer id: %w", err)
	}
	member, generation := cl.GroupMetadata()
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, group
	addResp, err := add.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("topology: add offsets to transaction: %w", err)
	}
	if err := kerr.ErrorForCode(addResp.ErrorCode); err != nil {
		return fmt.Errorf("topology: add offsets to transaction: %w", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txnID, group, pid, epoch
	req.Generation, req.MemberID, req.InstanceID = generation, member, &instanceID
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{rt}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("topology: fence offsets: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%w: %s/%d: %w", errFenced, t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
