package hubrelay

import (
	"net"
	"os"
	"sync"
	"time"
)

// packetConn is the relay as the net.PacketConn quic-go runs over: each
// QUIC packet is one relay frame to or from a peer named by its node ID.
// Like a UDP socket it loses packets rather than block: a frame that
// cannot be sent (no attachment) or that arrives while PacketQueue
// packets wait is dropped, and QUIC repairs the loss.
type packetConn struct {
	e    *endpoint
	in   chan inPacket
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed when the deadline changes
}

type inPacket struct {
	from netAddr
	data []byte // shared with the relay link's other readers: read only
}

func newPacketConn(e *endpoint, queue int) *packetConn {
	return &packetConn{e: e, in: make(chan inPacket, queue), done: make(chan struct{}), wake: make(chan struct{})}
}

// deliver queues a packet from node id, or drops it if the queue is full.
func (p *packetConn) deliver(id string, data []byte) {
	from, err := newNetAddr(id)
	if err != nil {
		return
	}
	select {
	case p.in <- inPacket{from: from, data: data}:
	default:
		p.e.stats.dropped.Add(1)
	}
}

// ReadFrom waits for the next packet, until the read deadline or Close.
func (p *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		p.mu.Lock()
		dl, wake := p.deadline, p.wake
		p.mu.Unlock()
		var t *time.Timer
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			expired = t.C
		}
		n, from, again, err := p.wait(b, wake, expired)
		if t != nil {
			t.Stop()
		}
		if !again {
			return n, from, err
		}
	}
}

// wait is one wait of ReadFrom; again when the deadline changed.
func (p *packetConn) wait(b []byte, wake <-chan struct{}, expired <-chan time.Time) (int, net.Addr, bool, error) {
	select {
	case pk := <-p.in:
		return copy(b, pk.data), pk.from, false, nil
	case <-p.done:
		return 0, nil, false, net.ErrClosed
	case <-wake:
		return 0, nil, true, nil
	case <-expired:
		return 0, nil, false, os.ErrDeadlineExceeded
	}
}

// WriteTo sends one QUIC packet to the node addr names. It never fails
// but after Close: a packet that cannot leave is lost, as UDP would lose
// it, and quic-go would otherwise close the connection on an error.
func (p *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-p.done:
		return 0, net.ErrClosed
	default:
	}
	to, ok := addr.(netAddr)
	if !ok {
		return len(b), nil
	}
	frame := appendHeader(make([]byte, 0, headerSize+len(b)), kindQUIC, p.e.c.tag)
	frame = append(frame, b...)
	p.e.stats.packetsOut.Add(1)
	if err := p.e.send(to.id, frame); err != nil {
		p.e.stats.dropped.Add(1)
	}
	return len(b), nil
}

func (p *packetConn) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *packetConn) LocalAddr() net.Addr { return p.e.self }

func (p *packetConn) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

func (p *packetConn) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: WriteTo does not block on the peer.
func (p *packetConn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer and SetWriteBuffer exist so that quic-go, which tries to
// grow a UDP socket's buffers, does not log a warning to stderr for a
// conn that has none: the queue is PacketQueue packets.
func (p *packetConn) SetReadBuffer(int) error  { return nil }
func (p *packetConn) SetWriteBuffer(int) error { return nil }

var _ net.PacketConn = (*packetConn)(nil)
