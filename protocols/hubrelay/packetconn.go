package hubrelay

import (
	"net"
	"os"
	"sync"
	"time"
)

// packetConn is the relay as the net.PacketConn quic-go runs over: QUIC
// packets travel in relay frames to or from a peer named by its node ID.
// WriteTo queues the packet for the sender goroutine, which sends what
// queued while it was busy as one frame per peer (see frame.go). Like a
// UDP socket it loses packets rather than block: a packet that cannot be
// sent (no attachment) or that finds PacketQueue packets waiting, either
// way, is dropped, and QUIC repairs the loss.
type packetConn struct {
	e     *endpoint
	queue int
	in    chan inPacket
	done  chan struct{}
	once  sync.Once

	outMu sync.Mutex
	out   []outPacket
	wake  chan struct{} // capacity 1: "out is not empty"

	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{} // closed when the deadline changes
}

type outPacket struct {
	to   string
	data []byte
}

type inPacket struct {
	from netAddr
	data []byte // shared with the relay link's other readers: read only
}

func newPacketConn(e *endpoint, queue int) *packetConn {
	return &packetConn{e: e, queue: queue, in: make(chan inPacket, queue), done: make(chan struct{}),
		wake: make(chan struct{}, 1), changed: make(chan struct{})}
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
		dl, changed := p.deadline, p.changed
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
		n, from, again, err := p.wait(b, changed, expired)
		if t != nil {
			t.Stop()
		}
		if !again {
			return n, from, err
		}
	}
}

// wait is one wait of ReadFrom; again when the deadline changed.
func (p *packetConn) wait(b []byte, changed <-chan struct{}, expired <-chan time.Time) (int, net.Addr, bool, error) {
	select {
	case pk := <-p.in:
		return copy(b, pk.data), pk.from, false, nil
	case <-p.done:
		return 0, nil, false, net.ErrClosed
	case <-changed:
		return 0, nil, true, nil
	case <-expired:
		return 0, nil, false, os.ErrDeadlineExceeded
	}
}

// WriteTo queues one QUIC packet for the node addr names. It never fails
// but after Close: a packet that cannot leave is lost, as UDP would lose
// it, and quic-go would otherwise close the connection on an error.
func (p *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-p.done:
		return 0, net.ErrClosed
	default:
	}
	to, ok := addr.(netAddr)
	if !ok || len(b) == 0 || len(b) > maxBatch-2 {
		return len(b), nil
	}
	p.e.stats.packetsOut.Add(1)
	p.outMu.Lock()
	full := len(p.out) >= p.queue
	if !full {
		// quic-go reuses b once WriteTo returns.
		p.out = append(p.out, outPacket{to: to.id, data: append([]byte(nil), b...)})
	}
	p.outMu.Unlock()
	if full {
		p.e.stats.dropped.Add(1)
		return len(b), nil
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// sender sends the queued packets until Close: whatever queued while it
// sent the previous frames goes now, consecutive packets to one peer in
// one frame of up to maxBatch bytes.
func (p *packetConn) sender() {
	defer p.e.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case <-p.wake:
		}
		for {
			p.outMu.Lock()
			batch := p.out
			p.out = nil
			p.outMu.Unlock()
			if len(batch) == 0 {
				break
			}
			var frame []byte
			var to string
			flush := func() {
				if frame != nil {
					if err := p.e.send(to, frame); err != nil {
						p.e.stats.dropped.Add(1)
					}
				}
				frame = nil
			}
			for _, pk := range batch {
				if frame != nil && (pk.to != to || len(frame)+2+len(pk.data) > headerSize+maxBatch) {
					flush()
				}
				if frame == nil {
					to = pk.to
					frame = appendHeader(make([]byte, 0, headerSize+min(maxBatch, len(batch)*(2+quicPacket))), kindQUIC, p.e.c.tag)
				}
				frame = appendPacket(frame, pk.data)
			}
			flush()
		}
	}
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
	close(p.changed)
	p.changed = make(chan struct{})
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
