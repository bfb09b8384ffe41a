package auth

import (
	"errors"
	"net"
	"testing"
)

func TestDecide(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	loop6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 8080}
	any4 := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	lan := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 8080}
	for _, tc := range []struct {
		name                  string
		addr                  net.Addr
		insecure, requireKeys bool
		keys                  int
		want                  Mode
		err                   error
	}{
		{"loopback", loop, false, false, 0, OpenLoopback, nil},
		{"loopback v6 with keys", loop6, false, false, 3, OpenLoopback, nil},
		{"loopback, keys required", loop, false, true, 0, Closed, nil},
		{"every interface without keys", any4, false, false, 0, Closed, ErrNoKeys},
		{"every interface with a key", any4, false, false, 1, Closed, nil},
		{"lan, insecure", lan, true, false, 0, Insecure, nil},
		{"lan without keys", lan, false, false, 0, Closed, ErrNoKeys},
		{"not TCP", &net.UnixAddr{Name: "/tmp/k.sock"}, false, false, 1, Closed, nil},
	} {
		got, err := Decide(tc.addr, tc.insecure, tc.requireKeys, tc.keys)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}
