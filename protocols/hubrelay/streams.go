package hubrelay

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
)

// Streams: QUIC connections between nodes, over the packet conn, and
// their streams as the endpoint's Dial and Port.Accept hand them out.

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
	e.live[c] = struct{}{}
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
	defer func() {
		e.forget(id, c)
		e.mu.Lock()
		delete(e.live, c)
		e.mu.Unlock()
	}()
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

var (
	_ network.Port = (*port)(nil)
	_ net.Conn     = (*stream)(nil)
)
