package network

import (
	"context"
	"errors"
	"net"
)

// Packet is one datagram as received.
type Packet struct {
	// From is the sender's address.
	From string
	// Payload is the datagram; the receiver owns it.
	Payload []byte
}

// Network makes endpoints. memnet.Network and tlsnet.Network implement it.
type Network interface {
	// Listen attaches a node at addr ("host:port").
	Listen(addr string) (Endpoint, error)
}

// Endpoint is one node's attachment to a Network.
type Endpoint interface {
	// Addr is the address other nodes reach this one at.
	Addr() string
	// Open claims a service name on this endpoint. Datagrams and streams
	// addressed to a service nobody opened are dropped or refused.
	Open(service string) (Port, error)
	// Send sends one datagram to service at addr. A nil error means only
	// that the datagram left: it may still be lost, delayed, duplicated or
	// reordered. Send does not block on the receiver.
	Send(ctx context.Context, to, service string, payload []byte) error
	// Dial opens a reliable ordered stream to service at addr.
	Dial(ctx context.Context, to, service string) (net.Conn, error)
	// Close detaches the node: its ports close, its streams break.
	Close() error
}

// Port is one service opened on an Endpoint. It is a net.Listener for
// incoming streams and a queue of incoming datagrams.
type Port interface {
	net.Listener
	// Packets delivers the service's datagrams. When the reader falls
	// behind, new datagrams are dropped, as a full socket buffer does.
	Packets() <-chan Packet
}

// Errors every implementation returns, so callers can tell them apart
// with errors.Is.
var (
	// ErrClosed: the endpoint or port was closed.
	ErrClosed = errors.New("network: closed")
	// ErrUnreachable: no route to the address (unknown, crashed or
	// partitioned away).
	ErrUnreachable = errors.New("network: unreachable")
	// ErrRefused: the node is there but nobody opened the service.
	ErrRefused = errors.New("network: service refused")
	// ErrServiceTaken: Open of a service already open on the endpoint.
	ErrServiceTaken = errors.New("network: service already open")
	// ErrTooLarge: a datagram above MaxDatagram.
	ErrTooLarge = errors.New("network: datagram too large")
)

// MaxDatagram bounds one datagram, so a decoder never allocates
// unbounded memory for a length read off the wire.
const MaxDatagram = 16 << 20

// PortQueue is how many datagrams a port buffers before dropping.
const PortQueue = 4096
