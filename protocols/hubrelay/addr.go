package hubrelay

import (
	"encoding/base32"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// A hub-relay address is a node ID. It is written as an IPv6 address and
// a port, because memberlist (under swim) takes only "ip:port" and would
// resolve anything else with DNS, off rime's Network: the ID's 80 bits
// (see identity.IDOf) fill the low 80 bits of an address in a unique
// local prefix of rime's own, fd72:696d:6500::/48 ("rime\0"), and the
// port is always Port. Send and Dial take either form; Addr and
// Packet.From give this one, so that an address that comes back (from a
// membership view, say) is the same string.
var prefix = [6]byte{0xfd, 'r', 'i', 'm', 'e', 0}

// Port is the port of every hub-relay address: the relay has none, and
// memberlist needs one.
const Port = 1

// idEncoding is identity's: "n" and 16 lowercase base32 characters.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

const idBytes = 10

// Addr is the hub-relay address of the node whose ID is id.
func Addr(id string) (string, error) {
	raw, err := idBits(id)
	if err != nil {
		return "", err
	}
	var a [16]byte
	copy(a[:], prefix[:])
	copy(a[len(prefix):], raw)
	return netip.AddrPortFrom(netip.AddrFrom16(a), Port).String(), nil
}

// NodeID is the node ID an address names: an ID as is, or a hub-relay
// address as Addr writes it (any spelling of the same IPv6 address).
func NodeID(addr string) (string, error) {
	if strings.HasPrefix(addr, "n") {
		if _, err := idBits(addr); err != nil {
			return "", err
		}
		return addr, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", fmt.Errorf("hub-relay: address %q: neither a node ID nor [ip]:port: %w", addr, err)
	}
	a := ap.Addr()
	if !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return "", fmt.Errorf("hub-relay: address %q: not an IPv6 address of the relay's prefix", addr)
	}
	b := a.As16()
	if [6]byte(b[:6]) != prefix {
		return "", fmt.Errorf("hub-relay: address %q: not in the relay's prefix %s/48", addr, netip.AddrFrom16([16]byte{0xfd, 'r', 'i', 'm', 'e'}))
	}
	if ap.Port() != Port {
		return "", fmt.Errorf("hub-relay: address %q: port %d, the relay's is %d", addr, ap.Port(), Port)
	}
	return "n" + idEncoding.EncodeToString(b[6:]), nil
}

// idBits decodes a node ID to its 80 bits.
func idBits(id string) ([]byte, error) {
	if len(id) != 1+16 || id[0] != 'n' {
		return nil, fmt.Errorf("hub-relay: %q is not a node ID (\"n\" and 16 base32 characters)", id)
	}
	raw, err := idEncoding.DecodeString(id[1:])
	if err != nil || len(raw) != idBytes {
		return nil, fmt.Errorf("hub-relay: %q is not a node ID: %v", id, err)
	}
	return raw, nil
}

// netAddr is a peer's address as a net.Addr, for quic-go and for the
// streams' RemoteAddr: String is the address as Addr writes it.
type netAddr struct{ id, addr string }

func (a netAddr) Network() string { return "hub-relay" }
func (a netAddr) String() string  { return a.addr }

// newNetAddr builds a peer's net.Addr from its ID.
func newNetAddr(id string) (netAddr, error) {
	a, err := Addr(id)
	if err != nil {
		return netAddr{}, err
	}
	return netAddr{id: id, addr: a}, nil
}

var _ net.Addr = netAddr{}

// Resolve maps a join entry to this transport's address of the node: a
// node ID or a hub-relay address names a node the relay reaches; any
// other address is another transport's (protocols.Resolver).
func (t *Transport) Resolve(join string) (string, bool) {
	id, err := NodeID(join)
	if err != nil {
		return "", false
	}
	addr, err := Addr(id)
	return addr, err == nil
}
