package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Retry pacing of the advertisement.
const (
	advertiseBackoff    = 100 * time.Millisecond
	advertiseMaxBackoff = 10 * time.Second
)

// record is the value of a directory topic record.
type record struct {
	InstanceID string `json:"instance_id"`
	HTTP       string `json:"http"`
	// Started is RFC 3339.
	Started string `json:"started"`
}

// decodeRecord checks the value of the record keyed id.
func decodeRecord(id string, value []byte) (instance, error) {
	var r record
	if err := json.Unmarshal(value, &r); err != nil {
		return instance{}, err
	}
	if r.InstanceID != id {
		return instance{}, fmt.Errorf("instance_id %q differs from the key %q", r.InstanceID, id)
	}
	if err := checkBaseURL(r.HTTP); err != nil {
		return instance{}, fmt.Errorf("http: %w", err)
	}
	inst := instance{url: r.HTTP}
	if r.Started != "" {
		t, err := time.Parse(time.RFC3339, r.Started)
		if err != nil {
			return instance{}, fmt.Errorf("started: %w", err)
		}
		inst.started = t
	}
	return inst, nil
}

// advertise writes this instance's record to the directory topic,
// retrying with backoff until it is acknowledged or ctx ends.
func (d *Directory) advertise(ctx context.Context, cl *kgo.Client) {
	// NB: a struct of strings always marshals.
	value, _ := json.Marshal(record{
		InstanceID: d.cfg.InstanceID,
		HTTP:       d.cfg.HTTP,
		Started:    d.started.UTC().Format(time.RFC3339),
	})
	backoff := advertiseBackoff
	for attempt := 1; ; attempt++ {
		rec := &kgo.Record{Topic: d.cfg.Topic, Key: []byte(d.cfg.InstanceID), Value: value}
		err := cl.ProduceSync(ctx, rec).FirstErr()
		if err == nil {
			d.cfg.Logger.Info("advertised this instance", attrTopic, d.cfg.Topic, attrInstance, d.cfg.InstanceID, "http", d.cfg.HTTP)
			return
		}
		if ctx.Err() != nil {
			return
		}
		d.cfg.Logger.Warn("advertising the instance failed; retrying", attrTopic, d.cfg.Topic,
			"attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, advertiseMaxBackoff)
	}
}

// follow reads the directory topic from the start until ctx ends, keeping
// the latest record of every other instance.
func (d *Directory) follow(ctx context.Context, cl *kgo.Client) {
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) {
				d.cfg.Logger.Warn("reading the directory topic failed", attrTopic, topic, attrPartition, partition, "err", err)
			}
		})
		fetches.EachRecord(d.apply)
	}
}

// apply takes one directory record into the instance map.
func (d *Directory) apply(r *kgo.Record) {
	id := string(r.Key)
	switch {
	case id == "":
		d.cfg.Logger.Warn("ignoring a directory record without a key", attrTopic, r.Topic, attrPartition, r.Partition, attrOffset, r.Offset)
		return
	case id == d.cfg.InstanceID:
		// NB: our own URL comes from cfg; an older incarnation's record
		// (or its tombstone) must not override it.
		return
	case r.Value == nil:
		d.mu.Lock()
		_, known := d.instances[id]
		delete(d.instances, id)
		d.mu.Unlock()
		if known {
			d.cfg.Logger.Info("instance withdrawn", attrInstance, id)
		}
		return
	}
	inst, err := decodeRecord(id, r.Value)
	if err != nil {
		d.cfg.Logger.Warn("ignoring a malformed directory record", attrTopic, r.Topic, attrPartition, r.Partition,
			attrOffset, r.Offset, attrInstance, id, "err", err)
		return
	}
	d.mu.Lock()
	old, known := d.instances[id]
	d.instances[id] = inst
	d.mu.Unlock()
	if !known || old.url != inst.url {
		d.cfg.Logger.Info("instance advertised", attrInstance, id, "http", inst.url)
	}
}
