package hubrelay

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/seal"
)

const (
	// alpn names the protocol in the QUIC handshake.
	alpn = "rime-hub-relay/1"

	// Stream header and status, as in tlsnet: the dialler names the
	// service, the acceptor answers ok once the port has the stream.
	streamVersion = 1
	statusOK      = 0
	statusRefused = 1

	// quicPacket is the largest QUIC packet quic-go sends (its
	// MaxPacketBufferSize). The relay has no MTU, so packets start there
	// and there is no path MTU to discover.
	quicPacket = 1452

	// Application error codes on the wire.
	codeClosed  quic.ApplicationErrorCode = 0
	codeRefused                           = 1
)

// ErrNotAttached: the node is not attached to any hub replica right now,
// so a datagram was dropped or a dial could not start.
var ErrNotAttached = errors.New("hub-relay: not attached to the hub")

// endpointConfig is what an endpoint is made from.
type endpointConfig struct {
	cfg     Config
	id      string
	key     ed25519.PrivateKey
	group   string
	class   string
	relayer protocols.Relayer
	tag     tag
	seal    *seal.Sealer
	log     *slog.Logger
	changes *changes
}

// endpoint is a network.Endpoint over the hub's relay: datagrams are
// sealed relay frames, streams are QUIC streams whose packets are relay
// frames (see the package documentation).
type endpoint struct {
	c    endpointConfig
	addr string
	self netAddr
	log  *slog.Logger

	pc   *packetConn
	qt   *quic.Transport
	ln   *quic.Listener
	base *tls.Config
	qc   *quic.Config

	life    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	changes *changes // the Transport's, which outlives the endpoint

	stats struct {
		sent, received, dropped, refused, packetsOut, packetsIn atomic.Int64
	}

	mu       sync.Mutex
	closed   bool
	link     protocols.RelayLink // nil while detached
	attaches int
	lastErr  error
	ports    map[string]*port
	conns    map[string]*quic.Conn   // by peer ID: the one new streams use
	live     map[*quic.Conn]struct{} // every connection not yet ended
	dialing  map[string]*dialCall
}

type dialCall struct {
	done chan struct{}
	c    *quic.Conn
	err  error
}

func newEndpoint(c endpointConfig) (*endpoint, error) {
	self, err := newNetAddr(c.id)
	if err != nil {
		return nil, err
	}
	cert, err := (&identity.Identity{Key: c.key}).Certificate()
	if err != nil {
		return nil, fmt.Errorf("hub-relay: %w", err)
	}
	life, cancel := context.WithCancel(context.Background())
	e := &endpoint{
		c: c, addr: self.addr, self: self, log: c.log,
		life: life, cancel: cancel, changes: c.changes,
		ports: map[string]*port{}, conns: map[string]*quic.Conn{}, live: map[*quic.Conn]struct{}{}, dialing: map[string]*dialCall{},
	}
	e.pc = newPacketConn(e, c.cfg.PacketQueue)
	e.base = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{alpn},
		// Peers are trusted by their key, as in tlsnet: the chain check
		// is off and verifyPeer checks the key against the node ID the
		// relay vouches for.
		InsecureSkipVerify: true,
		ClientAuth:         tls.RequireAnyClientCert,
		// Every connection proves its key afresh.
		SessionTicketsDisabled: true,
	}
	e.qc = &quic.Config{
		HandshakeIdleTimeout: c.cfg.HandshakeTimeout,
		MaxIdleTimeout:       c.cfg.IdleTimeout,
		KeepAlivePeriod:      c.cfg.KeepAlive,
		MaxIncomingStreams:   int64(c.cfg.MaxStreams),
		InitialPacketSize:    quicPacket,
		// The relay has no MTU to discover, and the packet conn cannot
		// set the DF bit the discovery relies on.
		DisablePathMTUDiscovery: true,
	}
	// A key of this node and class, stable across restarts: a peer still
	// holding a connection to this node's previous run is reset at its
	// first packet instead of waiting out IdleTimeout.
	rk, err := hkdf.Key(sha256.New, c.key.Seed(), []byte(c.group+"/"+c.class), "hub-relay/stateless-reset", 32)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("hub-relay: %w", err)
	}
	var resetKey quic.StatelessResetKey
	copy(resetKey[:], rk)
	e.qt = &quic.Transport{Conn: e.pc, StatelessResetKey: &resetKey}
	return e, nil
}

// start listens for QUIC connections and attaches to the relay, waiting
// for the first attachment within ctx and AttachTimeout.
func (e *endpoint) start(ctx context.Context) error {
	server := e.base.Clone()
	server.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		// quic-go gives the hello a Conn whose RemoteAddr is the packet
		// conn's: the ID the relay vouched for.
		if hi.Conn == nil {
			return nil, errors.New("hub-relay: no peer address in the handshake")
		}
		ra, ok := hi.Conn.RemoteAddr().(netAddr)
		if !ok {
			return nil, fmt.Errorf("hub-relay: peer address %v is not a relay address", hi.Conn.RemoteAddr())
		}
		cfg := e.base.Clone()
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyPeer(cs, ra.id) }
		return cfg, nil
	}
	ln, err := e.qt.Listen(server, e.qc)
	if err != nil {
		return fmt.Errorf("hub-relay: listen: %w", err)
	}
	e.ln = ln
	attached := e.changes.Next()
	e.wg.Add(3)
	go e.acceptConns()
	go e.run()
	go e.pc.sender()

	ctx, cancel := context.WithTimeout(ctx, e.c.cfg.AttachTimeout)
	defer cancel()
	for {
		e.mu.Lock()
		ok, last := e.link != nil, e.lastErr
		e.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-attached:
			attached = e.changes.Next()
		case <-ctx.Done():
			return fmt.Errorf("hub-relay: attach to the relay for group %s: %w (last attempt: %v)", e.c.group, ctx.Err(), last)
		}
	}
}

// run keeps the node attached: attach, read frames until the link ends,
// attach again (the relayer starts at another replica), backing off
// while attaches fail.
func (e *endpoint) run() {
	defer e.wg.Done()
	wait := e.c.cfg.ReattachMin
	for e.life.Err() == nil {
		link, err := e.c.relayer.Relay(e.life, e.c.group)
		if err != nil {
			if e.life.Err() != nil {
				return
			}
			e.detached(err)
			e.log.Debug("hub-relay: attach failed", "group", e.c.group, "retry", wait, "err", err)
			t := time.NewTimer(wait/2 + rand.N(wait/2+1))
			select {
			case <-t.C:
			case <-e.life.Done():
				t.Stop()
				return
			}
			wait = min(2*wait, e.c.cfg.ReattachMax)
			continue
		}
		wait = e.c.cfg.ReattachMin
		e.mu.Lock()
		e.link, e.lastErr = link, nil
		e.attaches++
		n := e.attaches
		e.mu.Unlock()
		e.changes.Notify()
		if n > 1 {
			e.log.Info("hub-relay: reattached", "group", e.c.group, "attaches", n)
		}
		err = e.receive(link)
		link.Close()
		if e.life.Err() != nil {
			return
		}
		e.log.Info("hub-relay: attachment ended; reattaching", "group", e.c.group, "err", err)
		e.detached(err)
	}
}

func (e *endpoint) detached(err error) {
	e.mu.Lock()
	e.link, e.lastErr = nil, err
	e.mu.Unlock()
	e.changes.Notify()
}

// errSilent: the attachment carried nothing, not even this node's
// heartbeat to itself, for HeartbeatTimeout.
var errSilent = errors.New("hub-relay: the attachment went silent")

// receive dispatches the link's frames until it ends or goes silent.
func (e *endpoint) receive(link protocols.RelayLink) error {
	ctx, cancel := context.WithCancelCause(e.life)
	defer cancel(nil)
	var heard atomic.Int64
	heard.Store(time.Now().UnixNano())
	e.wg.Add(1)
	go e.heartbeat(ctx, link, &heard, cancel)
	for {
		from, b, err := link.Recv(ctx)
		if err != nil {
			if cause := context.Cause(ctx); ctx.Err() != nil && e.life.Err() == nil {
				return cause
			}
			return err
		}
		heard.Store(time.Now().UnixNano())
		kind, t, body, err := decodeFrame(b)
		if err != nil {
			e.stats.refused.Add(1)
			e.log.Debug("hub-relay: malformed frame", "from", from, "err", err)
			continue
		}
		if t != e.c.tag {
			continue // another class's transport on this node
		}
		switch kind {
		case kindDatagram:
			e.deliver(from, body)
		case kindQUIC:
			err := splitPackets(body, func(pkt []byte) {
				e.stats.packetsIn.Add(1)
				e.pc.deliver(from, pkt)
			})
			if err != nil {
				e.stats.refused.Add(1)
				e.log.Debug("hub-relay: malformed frame", "from", from, "err", err)
			}
		case kindHeartbeat: // heard is all it is for
		}
	}
}

// heartbeat watches that the attachment still carries frames: a replica
// that vanished without closing the connection (a power cut; TCP's own
// keepalive takes minutes) is found within HeartbeatTimeout. When
// nothing arrived for a Heartbeat, the node sends itself a frame through
// the relay, which comes back if the replica is there.
func (e *endpoint) heartbeat(ctx context.Context, link protocols.RelayLink, heard *atomic.Int64, cancel context.CancelCauseFunc) {
	defer e.wg.Done()
	t := time.NewTicker(e.c.cfg.Heartbeat)
	defer t.Stop()
	frame := appendHeader(nil, kindHeartbeat, e.c.tag)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		silent := time.Since(time.Unix(0, heard.Load()))
		if silent >= e.c.cfg.HeartbeatTimeout {
			cancel(fmt.Errorf("%w for %v", errSilent, silent.Round(time.Millisecond)))
			return
		}
		if silent >= e.c.cfg.Heartbeat {
			link.Send(e.c.id, frame)
		}
	}
}

// deliver opens a datagram and queues it on its port.
func (e *endpoint) deliver(from string, body []byte) {
	plain, err := e.c.seal.Open(body)
	if err != nil {
		e.stats.refused.Add(1)
		e.log.Debug("hub-relay: datagram not sealed under the class's key", "from", from)
		return
	}
	d, err := decodePlain(plain)
	if err != nil || d.from != from || d.to != e.c.id {
		// Sealed by a member, but the hub says it comes from another, or
		// it was meant for another node: not the hub's to reroute.
		e.stats.refused.Add(1)
		e.log.Debug("hub-relay: datagram refused", "from", from, "sealed_from", d.from, "sealed_to", d.to, "err", err)
		return
	}
	e.deliverLocal(from, d.service, d.payload)
}

func (e *endpoint) deliverLocal(from, service string, payload []byte) {
	e.mu.Lock()
	p := e.ports[service]
	e.mu.Unlock()
	src, err := Addr(from)
	if p == nil || err != nil {
		e.stats.dropped.Add(1)
		return
	}
	// Counted first, so that whoever reads the datagram sees it counted.
	e.stats.received.Add(1)
	if !p.Deliver(network.Packet{From: src, Payload: payload}) {
		e.stats.received.Add(-1)
		e.stats.dropped.Add(1)
	}
}

// send puts one frame on the current link; without one it is dropped.
func (e *endpoint) send(to string, frame []byte) error {
	e.mu.Lock()
	l := e.link
	e.mu.Unlock()
	if l == nil {
		return ErrNotAttached
	}
	return l.Send(to, frame)
}

func (e *endpoint) Addr() string { return e.addr }

func (e *endpoint) Open(service string) (network.Port, error) {
	if len(service) > maxName {
		return nil, fmt.Errorf("hub-relay %s: open: service name of %d bytes, limit %d", e.c.id, len(service), maxName)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("hub-relay %s: open %q: %w", e.c.id, service, network.ErrClosed)
	}
	if _, taken := e.ports[service]; taken {
		return nil, fmt.Errorf("hub-relay %s: open %q: %w", e.c.id, service, network.ErrServiceTaken)
	}
	p := &port{e: e, service: service, Inbox: network.NewInbox(), conns: make(chan *stream)}
	e.ports[service] = p
	return p, nil
}

// Send seals the datagram and sends it as one relay frame. Like every
// Endpoint's, a nil error means only that it left: a node not attached
// right now drops it (counted in Stats.Dropped).
func (e *endpoint) Send(ctx context.Context, to, service string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hub-relay %s: send to %s/%s: %w", e.c.id, to, service, err)
	}
	if len(payload) > network.MaxDatagram {
		return fmt.Errorf("hub-relay %s: send %d bytes to %s/%s: %w", e.c.id, len(payload), to, service, network.ErrTooLarge)
	}
	id, err := NodeID(to)
	if err != nil {
		return fmt.Errorf("hub-relay %s: send to %s/%s: %w", e.c.id, to, service, err)
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return fmt.Errorf("hub-relay %s: send to %s/%s: %w", e.c.id, to, service, network.ErrClosed)
	}
	e.stats.sent.Add(1)
	if id == e.c.id {
		// To itself: the relay would bounce it back; skip the trip.
		e.deliverLocal(id, service, append([]byte(nil), payload...))
		return nil
	}
	plain, err := appendPlain(make([]byte, 0, 3+len(e.c.id)+len(id)+len(service)+len(payload)), datagram{from: e.c.id, to: id, service: service, payload: payload})
	if err != nil {
		return fmt.Errorf("hub-relay %s: send to %s/%s: %w", e.c.id, to, service, err)
	}
	frame := appendHeader(make([]byte, 0, headerSize+len(plain)+64), kindDatagram, e.c.tag)
	frame = append(frame, e.c.seal.Seal(plain)...)
	if err := e.send(id, frame); err != nil {
		e.stats.dropped.Add(1)
		e.log.Debug("hub-relay: datagram lost", "to", id, "service", service, "err", err)
	}
	return nil
}

// Close detaches the node: its connections are closed (peers are told,
// while the link is still up), then the ports, the QUIC transport and the
// link. It returns once the endpoint's goroutines have.
func (e *endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var conns []*quic.Conn
	for c := range e.live {
		conns = append(conns, c)
	}
	ports := e.ports
	e.ports = map[string]*port{}
	e.mu.Unlock()

	for _, c := range conns {
		c.CloseWithError(codeClosed, "closed")
	}
	if e.ln != nil {
		e.ln.Close()
	}
	e.qt.Close()
	e.cancel()
	e.pc.Close()
	for _, p := range ports {
		p.Shut()
	}
	e.wg.Wait()
	e.changes.Notify()
	return nil
}

// changes is a broadcast of "the attachment changed": waiters take the
// channel, check, and wait for it to close.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

func (c *changes) Next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

func (c *changes) Notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

var _ network.Endpoint = (*endpoint)(nil)
