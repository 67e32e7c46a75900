package tlsnet

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
)

// DefaultDialTimeout bounds a dial when Config.DialTimeout is zero: long
// enough for a TLS handshake over a slow mobile link, short enough that a
// node that vanished is given up on within a failure detector's patience.
const DefaultDialTimeout = 10 * time.Second

const (
	// alpn names the protocol in the TLS handshake, so a peer that is not
	// a rime node (or speaks a future, incompatible wire) is told apart
	// at the handshake rather than by a garbled header.
	alpn = "rime-net/1"

	// carrierQueue and carrierQueueBytes bound what waits for one
	// destination: a peer that reads slowly costs at most this much
	// memory; datagrams beyond it are dropped, as a full socket buffer
	// drops them.
	carrierQueue      = 1024
	carrierQueueBytes = 2 * network.MaxDatagram

	// carrierIdle: a carrier that sent nothing for this long closes its
	// connection and goroutine, so addresses of nodes long gone (a phone
	// that changed networks) do not pile up.
	carrierIdle = 2 * time.Minute

	// stallTimeout bounds one frame write (and a status write): a peer
	// whose socket accepts no bytes for this long is treated as gone.
	stallTimeout = 30 * time.Second

	// carrierBuffer batches small frames into few TLS records.
	carrierBuffer = 64 << 10
)

// ErrUnauthorized: a peer's key was refused, by this node's Authorize or
// by the peer's.
var ErrUnauthorized = errors.New("tlsnet: peer not authorized")

// Config configures a Network. The zero value is not usable: Identity is
// required. New copies the Config; the caller's value is never changed.
type Config struct {
	// Identity is this node's key. Both sides of every connection present
	// a self-signed certificate for their key, so each learns the other's
	// key from TLS itself. Required.
	Identity *identity.Identity

	// Authorize decides whether the peer holding pub (ID peerID, as
	// identity.IDOf computes it) may talk to this node. It is called on
	// both sides of every connection, after TLS has proven that the peer
	// holds the key and before any data is exchanged. An error refuses the
	// connection: the dialler's error says why when the dialler refused,
	// and the accepting side logs the reason when it refused.
	//
	// nil accepts every key: the connection is then encrypted and the
	// peer's key known, but anyone may connect. This is where group trust
	// plugs in: the hub's member list of keys, and the OPA policy
	// evaluated at every join. Authorize is called concurrently and must
	// not call back into the endpoint.
	Authorize func(peerID string, pub ed25519.PublicKey) error

	// DialTimeout bounds connecting, the TLS handshake and the header
	// exchange, on both sides: an accepted connection that has not
	// finished its handshake by then is dropped. Zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration

	// Logger receives what happens to connections: keys this node's
	// Authorize refused at Warn, this node's key refused by a peer at
	// Info, failed dials, handshakes and lost datagrams at Debug (a
	// failure detector probes dead nodes all the time). nil discards.
	Logger *slog.Logger
}

// Validate reports the first field that cannot work, quoting its value.
func (c Config) Validate() error {
	if c.Identity == nil {
		return errors.New("tlsnet: config: Identity is nil; load one with identity.LoadOrCreate")
	}
	if n := len(c.Identity.Key); n != ed25519.PrivateKeySize {
		return fmt.Errorf("tlsnet: config: Identity.Key has %d bytes, want an ed25519 private key of %d", n, ed25519.PrivateKeySize)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("tlsnet: config: DialTimeout %v is negative", c.DialTimeout)
	}
	return nil
}

// Network makes endpoints that talk TCP with mutual TLS 1.3. One Network
// may listen at several addresses; they share its identity.
type Network struct {
	cfg  Config
	tls  *tls.Config
	log  *slog.Logger
	dial net.Dialer
}

// New checks cfg and prepares the node's certificate.
func New(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cert, err := cfg.Identity.Certificate()
	if err != nil {
		return nil, fmt.Errorf("tlsnet: %w", err)
	}
	n := &Network{cfg: cfg, log: cfg.Logger.With("node", cfg.Identity.ID())}
	n.tls = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{alpn},
		// Peers are trusted by their key, not through a CA: the standard
		// chain verification is off and verifyPeer does the checking.
		InsecureSkipVerify: true,
		ClientAuth:         tls.RequireAnyClientCert,
		VerifyConnection:   n.verifyPeer,
		// No resumption: every connection proves its key afresh, so a key
		// Authorize stops accepting is refused from the next connection.
		SessionTicketsDisabled: true,
	}
	return n, nil
}

// verifyPeer checks the peer's certificate by its key alone: one
// certificate, ed25519, signed by its own key, within its validity, and a
// key Authorize accepts. TLS has already checked that the peer holds the
// private key (its CertificateVerify signature).
func (n *Network) verifyPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) != 1 {
		return fmt.Errorf("tlsnet: peer presented %d certificates, want one self-signed", len(cs.PeerCertificates))
	}
	cert := cs.PeerCertificates[0]
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return fmt.Errorf("tlsnet: peer certificate key is %T, want ed25519", cert.PublicKey)
	}
	id := identity.IDOf(pub)
	if cert.SignatureAlgorithm != x509.PureEd25519 || !ed25519.Verify(pub, cert.RawTBSCertificate, cert.Signature) {
		return fmt.Errorf("tlsnet: certificate of peer %s is not signed by its own key", id)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("tlsnet: certificate of peer %s is valid %v .. %v, not now", id,
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	if n.cfg.Authorize != nil {
		if err := n.cfg.Authorize(id, pub); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnauthorized, id, err)
		}
	}
	return nil
}

// Listen starts an endpoint on the TCP address addr. Port 0 picks a free
// port, which Addr then reports. Listen on the address peers will use
// (not 0.0.0.0): Addr is what this node advertises as its own.
func (n *Network) Listen(addr string) (network.Endpoint, error) {
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tlsnet: listen %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &endpoint{
		net:      n,
		ln:       ln,
		addr:     ln.Addr().String(),
		ctx:      ctx,
		cancel:   cancel,
		ports:    map[string]*port{},
		carriers: map[string]*carrier{},
		conns:    map[net.Conn]struct{}{},
	}
	e.log = n.log.With("addr", e.addr)
	e.wg.Add(1)
	go e.acceptLoop()
	return e, nil
}

// endpoint is one listening node. Goroutines: one accept loop, one per
// accepted connection (for a stream, only until Accept takes it), one
// writer per destination with a carrier. Close waits for all of them.
type endpoint struct {
	net  *Network
	ln   net.Listener
	addr string
	log  *slog.Logger

	// ctx ends with Close, aborting dials and handshakes in flight.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	ports    map[string]*port
	carriers map[string]*carrier
	// conns holds every live TCP connection, dialled or accepted, so that
	// Close breaks them all, whoever holds them.
	conns map[net.Conn]struct{}
}

func (e *endpoint) Addr() string { return e.addr }

func (e *endpoint) Open(service string) (network.Port, error) {
	if len(service) > MaxService {
		return nil, fmt.Errorf("tlsnet %s: open: service name of %d bytes, limit %d", e.addr, len(service), MaxService)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("tlsnet %s: open %q: %w", e.addr, service, network.ErrClosed)
	}
	if _, taken := e.ports[service]; taken {
		return nil, fmt.Errorf("tlsnet %s: open %q: %w", e.addr, service, network.ErrServiceTaken)
	}
	p := &port{ep: e, service: service,
		Inbox: network.NewInbox(),
		conns: make(chan *conn),
	}
	e.ports[service] = p
	return p, nil
}

// Send queues the datagram on the carrier to `to`, dialling it if needed,
// and returns without waiting for the network. A failed dial or write is
// logged and loses the datagrams queued at that moment; the next Send
// dials again.
func (e *endpoint) Send(ctx context.Context, to, service string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tlsnet %s: send to %s/%s: %w", e.addr, to, service, err)
	}
	if len(payload) > network.MaxDatagram {
		return fmt.Errorf("tlsnet %s: send %d bytes to %s/%s: %w", e.addr, len(payload), to, service, network.ErrTooLarge)
	}
	if len(service) > MaxService {
		return fmt.Errorf("tlsnet %s: send to %s: service name of %d bytes, limit %d", e.addr, to, len(service), MaxService)
	}
	// The caller may reuse payload as soon as Send returns.
	f := outFrame{service: service, payload: append([]byte(nil), payload...)}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("tlsnet %s: send to %s/%s: %w", e.addr, to, service, network.ErrClosed)
	}
	c := e.carriers[to]
	if c == nil {
		c = &carrier{ep: e, to: to, wake: make(chan struct{}, 1)}
		e.carriers[to] = c
		e.wg.Add(1)
		go c.run()
	}
	queued := c.enqueue(f)
	e.mu.Unlock()
	if !queued {
		e.log.Debug("tlsnet: carrier queue full, datagram dropped", "to", to, "service", service)
	}
	return nil
}

// Dial opens a stream to service at `to`. It returns once the remote
// port accepted it, or with ErrRefused if no port there has the service,
// ErrUnreachable if the node cannot be reached, ErrUnauthorized if either
// side refused the other's key.
func (e *endpoint) Dial(ctx context.Context, to, service string) (net.Conn, error) {
	if len(service) > MaxService {
		return nil, fmt.Errorf("tlsnet %s: dial %s: service name of %d bytes, limit %d", e.addr, to, len(service), MaxService)
	}
	tc, raw, err := e.connect(ctx, to, header{kind: kindStream, from: e.addr, service: service})
	if err != nil {
		return nil, err
	}
	return &conn{Conn: tc, ep: e, raw: raw, remote: raw.RemoteAddr()}, nil
}

// connect dials `to`, runs the TLS handshake, sends h and reads the
// status, all within DialTimeout and the caller's ctx, and aborted by
// Close. The raw connection is tracked on success.
func (e *endpoint) connect(ctx context.Context, to string, h header) (*tls.Conn, net.Conn, error) {
	what := to + "/" + h.service
	if h.kind == kindCarrier {
		what = to + " (datagram carrier)"
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("tlsnet %s: dial %s: %w", e.addr, what, err)
	}
	dctx, cancel := context.WithTimeout(ctx, e.net.cfg.DialTimeout)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()

	raw, err := e.net.dial.DialContext(dctx, "tcp", to)
	if err != nil {
		return nil, nil, e.dialError(ctx, what, network.ErrUnreachable, err)
	}
	if !e.track(raw) {
		raw.Close()
		return nil, nil, fmt.Errorf("tlsnet %s: dial %s: %w", e.addr, what, network.ErrClosed)
	}
	ok := false
	defer func() {
		if !ok {
			e.untrack(raw)
			raw.Close()
		}
	}()
	if dl, has := dctx.Deadline(); has {
		raw.SetDeadline(dl)
	}
	tc := tls.Client(raw, e.net.tls)
	if err := tc.HandshakeContext(dctx); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return nil, nil, fmt.Errorf("tlsnet %s: dial %s: %w", e.addr, what, err)
		}
		return nil, nil, e.dialError(ctx, what, network.ErrUnreachable, fmt.Errorf("TLS handshake: %w", err))
	}
	if err := writeHeader(tc, h); err != nil {
		return nil, nil, e.dialError(ctx, what, network.ErrUnreachable, fmt.Errorf("write header: %w", err))
	}
	// In TLS 1.3 the client's handshake ends before the server has checked
	// the client's certificate, so a refusal of this node's key arrives
	// here, as an alert instead of the status byte.
	var status [1]byte
	if _, err := io.ReadFull(tc, status[:]); err != nil {
		if isBadCertificateAlert(err) {
			return nil, nil, fmt.Errorf("tlsnet %s: dial %s: %w: the peer refused this node's key %s (%v)",
				e.addr, what, ErrUnauthorized, e.net.cfg.Identity.ID(), err)
		}
		return nil, nil, e.dialError(ctx, what, network.ErrUnreachable, fmt.Errorf("read status: %w", err))
	}
	if status[0] != statusOK {
		return nil, nil, fmt.Errorf("tlsnet %s: dial %s: %w", e.addr, what, network.ErrRefused)
	}
	raw.SetDeadline(time.Time{})
	ok = true
	return tc, raw, nil
}

// dialError names why a dial failed: this endpoint closed, the caller's
// ctx ended, or the peer could not be reached (kind).
func (e *endpoint) dialError(ctx context.Context, what string, kind, cause error) error {
	switch {
	case e.ctx.Err() != nil:
		return fmt.Errorf("tlsnet %s: dial %s: %w", e.addr, what, network.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("tlsnet %s: dial %s: %w: %v", e.addr, what, ctx.Err(), cause)
	}
	return fmt.Errorf("tlsnet %s: dial %s: %w: %w", e.addr, what, kind, cause)
}

// isBadCertificateAlert: did the peer end the handshake with a
// bad_certificate alert, which is what crypto/tls sends when
// VerifyConnection (here: the peer's Authorize) fails? crypto/tls reports
// remote alerts as a net.OpError whose inner type is unexported, so the
// alert is recognised by its text, which tls.AlertError shares.
func isBadCertificateAlert(err error) bool {
	const alertBadCertificate = 42
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil &&
		op.Err.Error() == tls.AlertError(alertBadCertificate).Error()
}

// Close stops the endpoint: the listener, every carrier and stream, every
// port. It returns once all the endpoint's goroutines have.
func (e *endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ports, conns := e.ports, e.conns
	e.ports, e.conns = map[string]*port{}, map[net.Conn]struct{}{}
	e.mu.Unlock()

	e.cancel()
	err := e.ln.Close()
	for c := range conns {
		c.Close()
	}
	for _, p := range ports {
		p.Shut()
	}
	e.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("tlsnet %s: close: %w", e.addr, err)
	}
	return nil
}

// track registers a live connection; false once the endpoint closed.
func (e *endpoint) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *endpoint) untrack(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
}

func (e *endpoint) acceptLoop() {
	defer e.wg.Done()
	var backoff time.Duration
	for {
		raw, err := e.ln.Accept()
		if err != nil {
			if e.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little rather
			// than spin, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			e.log.Warn("tlsnet: accept failed", "err", err, "retry", backoff)
			select {
			case <-time.After(backoff):
			case <-e.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			raw.Close()
			return
		}
		e.conns[raw] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go e.serve(raw)
	}
}

// serve runs one accepted connection: handshake, header, then either the
// carrier's datagrams until it ends or the hand-off of a stream to Accept.
func (e *endpoint) serve(raw net.Conn) {
	defer e.wg.Done()
	handedOff := false
	defer func() {
		if !handedOff {
			e.untrack(raw)
			raw.Close()
		}
	}()
	remote := raw.RemoteAddr().String()
	raw.SetDeadline(time.Now().Add(e.net.cfg.DialTimeout))
	tc := tls.Server(raw, e.net.tls)
	if err := tc.HandshakeContext(e.ctx); err != nil {
		switch {
		case errors.Is(err, ErrUnauthorized):
			e.log.Warn("tlsnet: refused a peer's key", "remote", remote, "err", err)
		case isBadCertificateAlert(err):
			// The dialler's Authorize refused this node: its decision, and
			// its log says why.
			e.log.Info("tlsnet: a peer refused this node's key", "remote", remote, "err", err)
		default:
			e.log.Debug("tlsnet: handshake failed", "remote", remote, "err", err)
		}
		return
	}
	h, err := readHeader(tc)
	if err != nil {
		e.log.Debug("tlsnet: bad header", "remote", remote, "err", err)
		return
	}
	switch h.kind {
	case kindCarrier:
		if _, err := tc.Write([]byte{statusOK}); err != nil {
			return
		}
		raw.SetDeadline(time.Time{})
		e.readCarrier(tc, h.from)
	case kindStream:
		p := e.port(h.service)
		if p == nil {
			tc.Write([]byte{statusRefused})
			return
		}
		// Accept sends the ok; until then the dialler waits, bounded by
		// its own timeout, as a TCP dial waits in a listen backlog.
		raw.SetDeadline(time.Time{})
		c := &conn{Conn: tc, ep: e, raw: raw, remote: peerAddr(h.from)}
		select {
		case p.conns <- c:
			handedOff = true
		case <-p.Done():
			raw.SetWriteDeadline(time.Now().Add(stallTimeout))
			tc.Write([]byte{statusRefused})
		case <-e.ctx.Done():
		}
	}
}

// readCarrier delivers datagrams until the carrier ends.
func (e *endpoint) readCarrier(tc *tls.Conn, from string) {
	r := bufio.NewReaderSize(tc, carrierBuffer)
	for {
		service, payload, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && e.ctx.Err() == nil {
				e.log.Debug("tlsnet: carrier ended", "from", from, "err", err)
			}
			return
		}
		if p := e.port(service); p != nil {
			p.Deliver(network.Packet{From: from, Payload: payload})
		}
	}
}

func (e *endpoint) port(service string) *port {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ports[service]
}

// outFrame is one datagram waiting for its carrier.
type outFrame struct {
	service string
	payload []byte
}

// carrier sends the datagrams of one endpoint to one destination over
// one connection, from one goroutine, so Send never waits for the peer.
type carrier struct {
	ep   *endpoint
	to   string
	wake chan struct{} // capacity 1: "the queue is not empty"

	mu    sync.Mutex
	queue []outFrame
	bytes int
}

// enqueue adds f unless the queue is full; called with ep.mu held, which
// orders it against retire.
func (c *carrier) enqueue(f outFrame) bool {
	c.mu.Lock()
	full := len(c.queue) >= carrierQueue || (len(c.queue) > 0 && c.bytes+len(f.payload) > carrierQueueBytes)
	if !full {
		c.queue = append(c.queue, f)
		c.bytes += len(f.payload)
	}
	c.mu.Unlock()
	if !full {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return !full
}

func (c *carrier) take() []outFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue, c.bytes = nil, 0
	return q
}

// retire removes an idle carrier from the endpoint unless a Send raced
// in; ep.mu makes the check and the removal one step for Send.
func (c *carrier) retire() bool {
	c.ep.mu.Lock()
	defer c.ep.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 {
		return false
	}
	if c.ep.carriers[c.to] == c {
		delete(c.ep.carriers, c.to)
	}
	return true
}

func (c *carrier) run() {
	defer c.ep.wg.Done()
	var out *carrierConn
	defer func() { out.close() }()
	idle := time.NewTimer(carrierIdle)
	defer idle.Stop()
	for {
		select {
		case <-c.ep.ctx.Done():
			return
		case <-idle.C:
			if c.retire() {
				return
			}
		case <-c.wake:
		}
		for batch := c.take(); len(batch) > 0; batch = c.take() {
			out = c.send(out, batch)
		}
		idle.Reset(carrierIdle)
	}
}

// carrierConn is a carrier's connection and its write buffer.
type carrierConn struct {
	ep  *endpoint
	raw net.Conn
	w   *bufio.Writer
}

func (cc *carrierConn) close() {
	if cc == nil {
		return
	}
	cc.ep.untrack(cc.raw)
	cc.raw.Close()
}

// send writes batch on out, dialling first if there is no connection. It
// returns the connection to use next time: nil after a failure, which
// loses the rest of the batch, since datagrams are unreliable anyway.
func (c *carrier) send(out *carrierConn, batch []outFrame) *carrierConn {
	if out == nil {
		tc, raw, err := c.ep.connect(c.ep.ctx, c.to, header{kind: kindCarrier, from: c.ep.addr})
		if err != nil {
			lvl := slog.LevelDebug
			if errors.Is(err, ErrUnauthorized) {
				lvl = slog.LevelWarn
			}
			c.ep.log.Log(context.Background(), lvl, "tlsnet: datagrams lost", "to", c.to, "count", len(batch), "err", err)
			return nil
		}
		out = &carrierConn{ep: c.ep, raw: raw, w: bufio.NewWriterSize(tc, carrierBuffer)}
	}
	// One deadline for the whole batch: frames mostly land in the buffer,
	// and a deadline per frame costs a clock read and a timer update each.
	out.raw.SetWriteDeadline(time.Now().Add(stallTimeout))
	var err error
	for _, f := range batch {
		if err = writeFrame(out.w, f.service, f.payload); err != nil {
			break
		}
	}
	if err == nil {
		err = out.w.Flush()
	}
	if err != nil {
		if c.ep.ctx.Err() == nil {
			c.ep.log.Debug("tlsnet: carrier broke, datagrams lost", "to", c.to, "err", err)
		}
		out.close()
		return nil
	}
	return out
}

// port is one opened service.
type port struct {
	ep      *endpoint
	service string
	*network.Inbox
	conns chan *conn
}

// Accept waits for the next stream and confirms it to its dialler, whose
// Dial returns only then.
func (p *port) Accept() (net.Conn, error) {
	for {
		select {
		case c := <-p.conns:
			c.raw.SetWriteDeadline(time.Now().Add(stallTimeout))
			_, err := c.Conn.Write([]byte{statusOK})
			c.raw.SetWriteDeadline(time.Time{})
			if err != nil {
				// The dialler gave up while the stream waited: take the next.
				p.ep.log.Debug("tlsnet: stream gone before accept", "service", p.service, "from", c.remote, "err", err)
				c.Close()
				continue
			}
			return c, nil
		case <-p.Done():
			return nil, fmt.Errorf("tlsnet %s: accept %q: %w", p.ep.addr, p.service, network.ErrClosed)
		}
	}
}

// Addr is the endpoint's listening address.
func (p *port) Addr() net.Addr { return p.ep.ln.Addr() }

// Close releases the service name; the endpoint and the streams already
// accepted stay up.
func (p *port) Close() error {
	p.ep.mu.Lock()
	if p.ep.ports[p.service] == p {
		delete(p.ep.ports, p.service)
	}
	p.ep.mu.Unlock()
	p.Shut()
	return nil
}

// conn is a stream. RemoteAddr is the peer's listen address (what Packet.From
// would say), not its ephemeral TCP port. The embedded *tls.Conn exposes
// ConnectionState, from which the peer's certificate and key can be read.
type conn struct {
	*tls.Conn
	ep     *endpoint
	raw    net.Conn
	remote net.Addr
}

func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) Close() error {
	c.ep.untrack(c.raw)
	return c.Conn.Close()
}

// peerAddr is a listen address carried in a header, as a net.Addr.
type peerAddr string

func (a peerAddr) Network() string { return "tcp" }
func (a peerAddr) String() string  { return string(a) }

var (
	_ network.Network  = (*Network)(nil)
	_ network.Endpoint = (*endpoint)(nil)
	_ network.Port     = (*port)(nil)
	_ net.Conn         = (*conn)(nil)
)
