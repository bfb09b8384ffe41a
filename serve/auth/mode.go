package auth

import (
	"errors"
	"net"
)

// Mode is how an instance's API treats requests without a key.
type Mode int

const (
	// Closed answers 401 to a request without a key.
	Closed Mode = iota
	// OpenLoopback serves a request without a key as admin, on an
	// instance that listens on a loopback address only.
	OpenLoopback
	// Insecure serves a request without a key as admin on any address
	// (--insecure).
	Insecure
)

// Open reports whether requests without a key are served (as admin).
func (m Mode) Open() bool { return m != Closed }

// ErrNoKeys refuses to serve a non-loopback address without keys.
var ErrNoKeys = errors.New("auth: no API key exists to serve a non-loopback address with")

// Decide is the mode of an instance listening on addr: open on a
// loopback address unless requireKeys, open anywhere when insecure,
// else closed; closed on a non-loopback address with no active key is
// ErrNoKeys (nobody could use it).
func Decide(addr net.Addr, insecure, requireKeys bool, activeKeys int) (Mode, error) {
	tcp, _ := addr.(*net.TCPAddr)
	loopback := tcp != nil && tcp.IP.IsLoopback()
	switch {
	case insecure:
		return Insecure, nil
	case loopback && !requireKeys:
		return OpenLoopback, nil
	case !loopback && activeKeys == 0:
		return Closed, ErrNoKeys
	}
	return Closed, nil
}
