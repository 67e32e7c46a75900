package hubrelay

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
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
	conns    map[string]*quic.Conn // by peer ID: the one new streams use
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
		ports: map[string]*port{}, conns: map[string]*quic.Conn{}, dialing: map[string]*dialCall{},
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

// Dial opens a QUIC stream to service at `to`, over the connection to
// that node (dialled on first use, and again once it has failed). It
// returns once the remote port accepted it, or with an error wrapping
// network.ErrRefused (no such service there), network.ErrUnreachable (no
// handshake within HandshakeTimeout or ctx: the node is not attached, or
// refused this node's key) or network.ErrClosed.
func (e *endpoint) Dial(ctx context.Context, to, service string) (net.Conn, error) {
	if len(service) > maxName {
		return nil, fmt.Errorf("hub-relay %s: dial %s: service name of %d bytes, limit %d", e.c.id, to, len(service), maxName)
	}
	id, err := NodeID(to)
	if err != nil {
		return nil, fmt.Errorf("hub-relay %s: dial %s/%s: %w", e.c.id, to, service, err)
	}
	var s *quic.Stream
	var remote netAddr
	for attempt := 0; ; attempt++ {
		c, err := e.connTo(ctx, id)
		if err != nil {
			return nil, e.dialError(ctx, to, service, err)
		}
		s, err = c.OpenStreamSync(ctx)
		if err == nil {
			remote = c.RemoteAddr().(netAddr)
			break
		}
		// The connection died under us (the peer restarted, say): drop it
		// and dial once more.
		e.forget(id, c)
		if attempt > 0 || ctx.Err() != nil {
			return nil, e.dialError(ctx, to, service, err)
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hdr := append([]byte{streamVersion, byte(len(service))}, service...)
	var status [1]byte
	_, err = s.Write(hdr)
	if err == nil {
		_, err = io.ReadFull(s, status[:])
	}
	if err != nil {
		s.CancelRead(0)
		s.CancelWrite(0)
		return nil, e.dialError(ctx, to, service, err)
	}
	if status[0] != statusOK {
		s.CancelRead(0)
		s.Close()
		return nil, fmt.Errorf("hub-relay %s: dial %s/%s: %w", e.c.id, to, service, network.ErrRefused)
	}
	if !stop() {
		s.CancelRead(0)
		s.CancelWrite(0)
		return nil, e.dialError(ctx, to, service, ctx.Err())
	}
	s.SetDeadline(time.Time{})
	return &stream{Stream: s, local: e.self, remote: remote}, nil
}

// dialError names why a dial failed: the endpoint closed, ctx ended, or
// the peer could not be reached.
func (e *endpoint) dialError(ctx context.Context, to, service string, cause error) error {
	switch {
	case e.life.Err() != nil:
		return fmt.Errorf("hub-relay %s: dial %s/%s: %w", e.c.id, to, service, network.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("hub-relay %s: dial %s/%s: %w: %v", e.c.id, to, service, ctx.Err(), cause)
	}
	return fmt.Errorf("hub-relay %s: dial %s/%s: %w: %w", e.c.id, to, service, network.ErrUnreachable, cause)
}

// connTo returns a live connection to node id, dialling one if there is
// none; concurrent callers share one dial, which runs on the endpoint's
// life (bounded by HandshakeTimeout) so one caller giving up does not
// fail the others.
func (e *endpoint) connTo(ctx context.Context, id string) (*quic.Conn, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, network.ErrClosed
	}
	if c := e.conns[id]; c != nil && c.Context().Err() == nil {
		e.mu.Unlock()
		return c, nil
	}
	call := e.dialing[id]
	if call == nil {
		if e.link == nil {
			// QUIC would retransmit its Initial into the void until the
			// handshake timeout; fail now instead.
			err := e.lastErr
			e.mu.Unlock()
			return nil, fmt.Errorf("%w (last attach: %v)", ErrNotAttached, err)
		}
		call = &dialCall{done: make(chan struct{})}
		e.dialing[id] = call
		e.wg.Add(1)
		go e.dial(id, call)
	}
	e.mu.Unlock()
	select {
	case <-call.done:
		return call.c, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *endpoint) dial(id string, call *dialCall) {
	defer e.wg.Done()
	ctx, cancel := context.WithTimeout(e.life, e.c.cfg.HandshakeTimeout)
	defer cancel()
	var c *quic.Conn
	ra, err := newNetAddr(id)
	if err == nil {
		client := e.base.Clone()
		client.ServerName = "hub-relay"
		client.VerifyConnection = func(cs tls.ConnectionState) error { return verifyPeer(cs, id) }
		c, err = e.qt.Dial(ctx, ra, client, e.qc)
	}
	e.mu.Lock()
	delete(e.dialing, id)
	if err == nil && e.closed {
		err = network.ErrClosed
	}
	if err == nil {
		e.adoptLocked(id, c)
	}
	call.c, call.err = c, err
	close(call.done)
	e.mu.Unlock()
	if c != nil && err != nil {
		c.CloseWithError(codeClosed, "closed")
	}
}

// acceptConns takes the connections peers dial, after checking that the
// key they proved is the one of the node the relay says they are.
func (e *endpoint) acceptConns() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept(e.life)
		if err != nil {
			return
		}
		ra, _ := c.RemoteAddr().(netAddr)
		if err := verifyPeer(c.ConnectionState().TLS, ra.id); err != nil {
			e.log.Warn("hub-relay: refused a connection", "from", ra.id, "err", err)
			c.CloseWithError(codeRefused, "key does not match the relay's sender")
			continue
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.CloseWithError(codeClosed, "closed")
			return
		}
		e.adoptLocked(ra.id, c)
		e.mu.Unlock()
	}
}

// adoptLocked makes c a connection to id: new streams use it unless a
// live one is there already (two nodes that dial each other at once
// keep both), and its incoming streams are served until it ends.
func (e *endpoint) adoptLocked(id string, c *quic.Conn) {
	if old := e.conns[id]; old == nil || old.Context().Err() != nil {
		e.conns[id] = c
	}
	e.wg.Add(1)
	go e.acceptStreams(id, c)
}

func (e *endpoint) forget(id string, c *quic.Conn) {
	e.mu.Lock()
	if e.conns[id] == c {
		delete(e.conns, id)
	}
	e.mu.Unlock()
}

// acceptStreams serves c's incoming streams until c ends.
func (e *endpoint) acceptStreams(id string, c *quic.Conn) {
	defer e.wg.Done()
	defer e.forget(id, c)
	remote := c.RemoteAddr().(netAddr)
	for {
		s, err := c.AcceptStream(e.life)
		if err != nil {
			e.log.Debug("hub-relay: connection ended", "peer", id, "err", err)
			return
		}
		e.wg.Add(1)
		go e.acceptStream(&stream{Stream: s, local: e.self, remote: remote})
	}
}

// acceptStream reads a stream's header and hands the stream to its
// port's Accept, which confirms it to the dialler.
func (e *endpoint) acceptStream(s *stream) {
	defer e.wg.Done()
	s.SetReadDeadline(time.Now().Add(e.c.cfg.HandshakeTimeout))
	service, err := readStreamHeader(s)
	s.SetReadDeadline(time.Time{})
	if err != nil {
		e.log.Debug("hub-relay: bad stream header", "from", s.remote.id, "err", err)
		s.Close()
		return
	}
	e.mu.Lock()
	p := e.ports[service]
	e.mu.Unlock()
	if p != nil {
		select {
		case p.conns <- s:
			return
		case <-p.Done():
		case <-e.life.Done():
			s.Close()
			return
		}
	}
	s.SetWriteDeadline(time.Now().Add(e.c.cfg.HandshakeTimeout))
	s.Write([]byte{statusRefused})
	s.Close()
}

// readStreamHeader reads exactly the header: the bytes after it are the
// application's.
func readStreamHeader(r io.Reader) (string, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	if b[0] != streamVersion {
		return "", fmt.Errorf("%w: stream header version %d, want %d", errFrame, b[0], streamVersion)
	}
	name := make([]byte, b[1])
	if _, err := io.ReadFull(r, name); err != nil {
		return "", err
	}
	return string(name), nil
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
	for _, c := range e.conns {
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

// verifyPeer checks the peer's certificate by its key alone, as tlsnet
// does (one self-signed ed25519 certificate, within its validity), and
// that the key is the one of node want: the ID the relay vouches for as
// the sender, or the node this one dialled.
func verifyPeer(cs tls.ConnectionState, want string) error {
	if len(cs.PeerCertificates) != 1 {
		return fmt.Errorf("hub-relay: peer presented %d certificates, want one self-signed", len(cs.PeerCertificates))
	}
	cert := cs.PeerCertificates[0]
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return fmt.Errorf("hub-relay: peer certificate key is %T, want ed25519", cert.PublicKey)
	}
	id := identity.IDOf(pub)
	if cert.SignatureAlgorithm != x509.PureEd25519 || !ed25519.Verify(pub, cert.RawTBSCertificate, cert.Signature) {
		return fmt.Errorf("hub-relay: certificate of peer %s is not signed by its own key", id)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("hub-relay: certificate of peer %s is valid %v .. %v, not now", id,
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	if id != want {
		return fmt.Errorf("hub-relay: peer holds the key of %s, but the relay says it is %s", id, want)
	}
	return nil
}

// port is one opened service.
type port struct {
	e       *endpoint
	service string
	*network.Inbox
	conns chan *stream
}

// Accept waits for the next stream and confirms it to its dialler.
func (p *port) Accept() (net.Conn, error) {
	for {
		select {
		case s := <-p.conns:
			s.SetWriteDeadline(time.Now().Add(p.e.c.cfg.HandshakeTimeout))
			_, err := s.Write([]byte{statusOK})
			s.SetWriteDeadline(time.Time{})
			if err != nil {
				// The dialler gave up while the stream waited.
				s.Close()
				continue
			}
			return s, nil
		case <-p.Done():
			return nil, fmt.Errorf("hub-relay %s: accept %q: %w", p.e.c.id, p.service, network.ErrClosed)
		}
	}
}

func (p *port) Addr() net.Addr { return p.e.self }

// Close releases the service name; the endpoint and the streams already
// accepted stay up.
func (p *port) Close() error {
	p.e.mu.Lock()
	if p.e.ports[p.service] == p {
		delete(p.e.ports, p.service)
	}
	p.e.mu.Unlock()
	p.Shut()
	return nil
}

// stream is a QUIC stream as a net.Conn.
type stream struct {
	*quic.Stream
	local, remote netAddr
}

func (s *stream) LocalAddr() net.Addr  { return s.local }
func (s *stream) RemoteAddr() net.Addr { return s.remote }

// Close closes both directions, as closing a TCP connection does: what
// was written is still delivered (QUIC's Close is a FIN), what the peer
// still sends is refused.
func (s *stream) Close() error {
	s.Stream.CancelRead(0)
	return s.Stream.Close()
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

var (
	_ network.Endpoint = (*endpoint)(nil)
	_ network.Port     = (*port)(nil)
	_ net.Conn         = (*stream)(nil)
)
