package kafkasec

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// scramClient is sarama's SCRAM conversation (sarama.SCRAMClient) run by
// franz-go's SCRAM implementation, so that both client libraries share
// one and kappa needs no third.
type scramClient struct {
	sha512 bool
	sess   sasl.Session
	// first is the client-first message, sent on the first Step.
	first []byte
	done  bool
}

// Begin starts the conversation for the user.
func (c *scramClient) Begin(user, password, authzID string) error {
	a := scram.Auth{User: user, Pass: password, Zid: authzID}
	m := a.AsSha256Mechanism()
	if c.sha512 {
		m = a.AsSha512Mechanism()
	}
	sess, first, err := m.Authenticate(context.Background(), "")
	if err != nil {
		return err
	}
	c.sess, c.first, c.done = sess, first, false
	return nil
}

// Step answers the server's challenge: "" asks for the first message.
func (c *scramClient) Step(challenge string) (string, error) {
	if c.sess == nil {
		return "", errors.New("kafkasec: scram: Step before Begin")
	}
	if c.first != nil {
		first := c.first
		c.first = nil
		return string(first), nil
	}
	done, resp, err := c.sess.Challenge([]byte(challenge))
	if err != nil {
		return "", err
	}
	c.done = done
	return string(resp), nil
}

// Done reports whether the server's final message was verified.
func (c *scramClient) Done() bool { return c.done }
