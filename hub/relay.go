package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// relay forwards opaque frames between registered members of a group
// that cannot reach each other. A node attaches to any replica with a
// signed OpRelayAttach for one group (the Authorizer's "relay" decision,
// about the attaching node), then sends frames naming a destination node.
// A frame is delivered to the destination's session on this replica, or
// sent as a datagram to the other replicas, which deliver it to a session
// they hold. Nothing is stored: a frame sits only in the destination
// session's bounded queue, and is dropped when that queue is full or the
// destination is attached nowhere, as a datagram would be. Both ends must
// still be members at every frame, so a removed member's traffic stops at
// its next frame. Payloads are opaque: nodes seal them end to end (the
// relay never sees a key); the hub does not and cannot check that.
type relay struct {
	r *Replica

	mu       sync.Mutex
	sessions map[sessionKey]*relaySession
	closed   bool
}

type sessionKey struct{ group, node string }

type relaySession struct {
	key  sessionKey
	c    net.Conn
	out  chan []byte
	once sync.Once
}

// relayQueue is how many frames wait for a slow destination.
const relayQueue = 256

func newRelay(r *Replica) *relay {
	return &relay{r: r, sessions: map[sessionKey]*relaySession{}}
}

func (rl *relay) close() {
	rl.mu.Lock()
	rl.closed = true
	ss := rl.sessions
	rl.sessions = map[sessionKey]*relaySession{}
	rl.mu.Unlock()
	for _, s := range ss {
		s.stop()
	}
}

func (s *relaySession) stop() { s.once.Do(func() { s.c.Close() }) }

func (rl *relay) serve(p network.Port) {
	defer rl.r.wg.Done()
	for {
		c, err := p.Accept()
		if err != nil {
			return
		}
		rl.r.wg.Add(1)
		go func() {
			defer rl.r.wg.Done()
			rl.session(c)
		}()
	}
}

// attach checks an attach request against the local state: registered,
// signed, fresh, a member of the group, and allowed to relay.
func (rl *relay) attach(ctx context.Context, b []byte) (sessionKey, Response) {
	req, err := DecodeRequest(b)
	if err != nil {
		return sessionKey{}, errResponse(err)
	}
	if req.Op != OpRelayAttach {
		return sessionKey{}, errResponse(fmt.Errorf("%w: a relay session opens with %s, not %s", ErrBadRequest, OpRelayAttach, req.Op))
	}
	var a GroupArgs
	var in Input
	now := rl.r.cfg.Now().UnixNano()
	rl.r.core.view(func(s *State) {
		var key []byte
		if key, err = s.keyOf(&req); err != nil {
			return
		}
		if err = req.Verify(key); err != nil {
			return
		}
		if w := int64(ReplayWindow); req.Time < now-w || req.Time > now+w {
			err = fmt.Errorf("%w: relay attach", ErrStale)
			return
		}
		if err = decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return
		}
		if _, err = s.memberGroup(a.Group, req.Signer); err != nil {
			return
		}
		in, err = s.DecisionInput(ActionRelay, a.Group, req.Signer, "")
	})
	if err != nil {
		return sessionKey{}, errResponse(err)
	}
	d := rl.r.decide(ctx, req.Signer, req.Op, in)
	if !d.Allow {
		return sessionKey{}, Response{Code: codeOf(ErrDenied), Msg: fmt.Sprintf("%s: %v", ErrDenied, d.Reasons), Decision: &d}
	}
	return sessionKey{group: a.Group, node: req.Signer}, Response{Decision: &d}
}

func (rl *relay) session(c net.Conn) {
	defer c.Close()
	stopCtx := context.AfterFunc(rl.r.ctx, func() { c.Close() })
	defer stopCtx()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	c.SetDeadline(time.Now().Add(rl.r.cfg.RequestTimeout))
	b, err := readFrame(br)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(rl.r.ctx, rl.r.cfg.RequestTimeout)
	key, resp := rl.attach(ctx, b)
	cancel()
	out, _ := json.Marshal(resp)
	if resp.Code != "" {
		writeFrame(bw, out)
		return
	}
	// The session is in the table before the node hears it is attached,
	// so a frame sent to it right after is not dropped.
	s := &relaySession{key: key, c: c, out: make(chan []byte, relayQueue)}
	rl.mu.Lock()
	if rl.closed {
		rl.mu.Unlock()
		return
	}
	old := rl.sessions[key]
	rl.sessions[key] = s
	rl.mu.Unlock()
	if old != nil {
		old.stop()
	}
	defer func() {
		rl.mu.Lock()
		if rl.sessions[key] == s {
			delete(rl.sessions, key)
		}
		rl.mu.Unlock()
		s.stop()
	}()
	if err := writeFrame(bw, out); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case f := <-s.out:
				if writeFrame(bw, f) != nil {
					s.stop()
					return
				}
			case <-quit:
				return
			}
		}
	}()
	defer func() { close(quit); s.stop(); <-done }()
	for {
		b, err := readFrame(br)
		if err != nil {
			return
		}
		to, payload, err := DecodeRelayFrame(b)
		if err != nil {
			return
		}
		if !rl.members(key.group, key.node, to) {
			// The sender or the destination left the group: the
			// sender's session ends; a destination's frames are dropped.
			if !rl.members(key.group, key.node) {
				return
			}
			continue
		}
		if !rl.deliver(key.group, key.node, to, payload) {
			rl.forward(relayFwd{Group: key.group, From: key.node, To: to, Payload: payload})
		}
	}
}

// members says every id is a member of group in this replica's state.
func (rl *relay) members(group string, ids ...string) bool {
	ok := true
	rl.r.core.view(func(s *State) {
		g, found := s.Groups[group]
		if !found {
			ok = false
			return
		}
		for _, id := range ids {
			if _, m := g.Members[id]; !m {
				ok = false
			}
		}
	})
	return ok
}

// deliver queues a frame on a local session; false if there is none.
func (rl *relay) deliver(group, from, to string, payload []byte) bool {
	rl.mu.Lock()
	s := rl.sessions[sessionKey{group, to}]
	rl.mu.Unlock()
	if s == nil {
		return false
	}
	select {
	case s.out <- encodeRelayFrame(from, payload):
	default: // full: dropped, as a datagram would be
	}
	return true
}

// peers are the other replicas' addresses.
func (rl *relay) peers() []string {
	var out []string
	rl.r.core.view(func(s *State) {
		for id := range s.Replicas() {
			if id == rl.r.id {
				continue
			}
			if a, ok := rl.r.book.lookup(id); ok {
				out = append(out, a)
			}
		}
	})
	slices.Sort(out)
	return out
}

func (rl *relay) forward(f relayFwd) {
	b, err := json.Marshal(f)
	if err != nil || len(b) > network.MaxDatagram {
		return
	}
	for _, a := range rl.peers() {
		rl.r.ep.Send(rl.r.ctx, a, relayForward, b)
	}
}

// forwarded delivers frames other replicas forwarded, if they come from a
// replica's address and both ends are still members.
func (rl *relay) forwarded(p network.Port) {
	defer rl.r.wg.Done()
	for pkt := range p.Packets() {
		if !slices.Contains(rl.peers(), pkt.From) {
			continue
		}
		f, err := decodeRelayFwd(pkt.Payload)
		if err != nil || !rl.members(f.Group, f.From, f.To) {
			continue
		}
		rl.deliver(f.Group, f.From, f.To, f.Payload)
	}
}

// RelayConn is a node's relay session for one group.
type RelayConn struct {
	addr  string // the replica's
	c     net.Conn
	br    *bufio.Reader
	wmu   sync.Mutex
	bw    *bufio.Writer
	in    chan relayed
	done  chan struct{}
	err   error
	close sync.Once
}

type relayed struct {
	from    string
	payload []byte
}

// Relay opens a relay session for group on a hub replica. Frames sent to
// a member reach it if it has a session open on any replica.
func (c *Client) Relay(ctx context.Context, group string) (*RelayConn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	var last error
	for range len(c.cfg.Hubs) {
		addr := c.target(false)
		rc, err := c.relayAt(ctx, addr, group)
		if err == nil {
			return rc, nil
		}
		var he *Error
		if asError(err, &he) {
			return nil, err
		}
		c.failed(addr)
		last = err
	}
	return nil, fmt.Errorf("%w: relay: %v", ErrUnavailable, last)
}

func (c *Client) relayAt(ctx context.Context, addr, group string) (*RelayConn, error) {
	nc, err := c.cfg.Endpoint.Dial(ctx, addr, RelayService)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	rc := &RelayConn{addr: addr, c: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc), in: make(chan relayed, relayQueue), done: make(chan struct{})}
	req, err := NewRequest(c.cfg.Identity, OpRelayAttach, GroupArgs{Group: group}, c.cfg.Now())
	if err != nil {
		nc.Close()
		return nil, err
	}
	enc, _ := EncodeRequest(req)
	if err := writeFrame(rc.bw, enc); err != nil {
		nc.Close()
		return nil, err
	}
	b, err := readFrame(rc.br)
	if !stop() || err != nil {
		nc.Close()
		return nil, fmt.Errorf("hub client: relay attach at %s: %v", addr, err)
	}
	resp, err := DecodeResponse(b)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.Code != "" {
		nc.Close()
		return nil, &Error{Code: resp.Code, Msg: resp.Msg, Decision: resp.Decision}
	}
	go rc.receive()
	return rc, nil
}

func (rc *RelayConn) receive() {
	defer close(rc.done)
	for {
		b, err := readFrame(rc.br)
		if err != nil {
			rc.err = err
			return
		}
		from, payload, err := DecodeRelayFrame(b)
		if err != nil {
			rc.err = err
			return
		}
		select {
		case rc.in <- relayed{from, payload}:
		default:
		}
	}
}

// Send sends a sealed payload to node to through the relay. Delivery is
// best effort, like a datagram.
func (rc *RelayConn) Send(to string, payload []byte) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	if err := writeFrame(rc.bw, encodeRelayFrame(to, payload)); err != nil {
		return fmt.Errorf("hub relay: %w", err)
	}
	return nil
}

// Recv waits for the next payload and the node that sent it.
func (rc *RelayConn) Recv(ctx context.Context) (string, []byte, error) {
	select {
	case m := <-rc.in:
		return m.from, m.payload, nil
	case <-rc.done:
		select {
		case m := <-rc.in:
			return m.from, m.payload, nil
		default:
		}
		return "", nil, fmt.Errorf("hub relay: session ended: %w", rc.err)
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
}

// Replica is the address of the hub replica the session is attached to.
func (rc *RelayConn) Replica() string { return rc.addr }

// Close ends the session.
func (rc *RelayConn) Close() error {
	rc.close.Do(func() { rc.c.Close() })
	<-rc.done
	return nil
}

// Relayer is c as the hub-relay transport's protocols.Relayer.
//
// The hub keeps one relay session per node and group (a new attach ends
// the previous one), but a node runs one transport per data class, each
// asking for its own link. So the relayer shares one session per group
// among the links it hands out, fanning every frame it receives out to
// all of them (the transport tells its own frames apart), and ends the
// session with its last link. When a session breaks, its links end; the
// next Relay opens a new session, starting at another replica.
//
// Call Relayer once per node and hand the result to every class: two
// relayers of one client would end each other's sessions.
func (c *Client) Relayer() protocols.Relayer {
	return &relayer{c: c, sessions: map[string]*sharedSession{}}
}

type relayer struct {
	c *Client
	// open serializes attaches, so links asked for together share one.
	open sync.Mutex

	mu       sync.Mutex
	sessions map[string]*sharedSession // by group
}

// sharedSession is one RelayConn and the links reading it.
type sharedSession struct {
	group string
	conn  *RelayConn
	links map[*relayLink]struct{}
	ended chan struct{} // closed when the session ends
	err   error         // why, set before ended closes
}

// relayLink is one transport's view of a shared session.
type relayLink struct {
	r    *relayer
	s    *sharedSession
	in   chan relayed
	done chan struct{}
	once sync.Once
}

// linkQueue is how many frames wait for one link's reader, as many as
// the session itself buffers.
const linkQueue = relayQueue

func (r *relayer) Relay(ctx context.Context, group string) (protocols.RelayLink, error) {
	r.open.Lock()
	defer r.open.Unlock()
	l := &relayLink{r: r, in: make(chan relayed, linkQueue), done: make(chan struct{})}
	// A session in the table has not ended: pump removes it first, under
	// the same lock, and so does the Close of its last link.
	r.mu.Lock()
	if s := r.sessions[group]; s != nil {
		l.s = s
		s.links[l] = struct{}{}
		r.mu.Unlock()
		return l, nil
	}
	r.mu.Unlock()
	conn, err := r.c.Relay(ctx, group)
	if err != nil {
		return nil, err
	}
	s := &sharedSession{group: group, conn: conn, links: map[*relayLink]struct{}{l: {}}, ended: make(chan struct{})}
	l.s = s
	r.mu.Lock()
	r.sessions[group] = s
	r.mu.Unlock()
	go r.pump(s)
	return l, nil
}

// pump fans the session's frames out to its links until it ends.
func (r *relayer) pump(s *sharedSession) {
	for {
		from, payload, err := s.conn.Recv(context.Background())
		if err != nil {
			r.mu.Lock()
			if r.sessions[s.group] == s {
				delete(r.sessions, s.group)
			}
			s.err = err
			close(s.ended)
			closing := len(s.links) == 0
			r.mu.Unlock()
			if !closing {
				// Broken under its links, not closed by them: start the
				// next attach at another replica.
				r.c.failed(s.conn.Replica())
			}
			s.conn.Close()
			return
		}
		r.mu.Lock()
		for l := range s.links {
			select {
			case l.in <- relayed{from, payload}:
			default: // a slow link loses the frame, as a full socket would
			}
		}
		r.mu.Unlock()
	}
}

func (l *relayLink) Send(to string, payload []byte) error {
	select {
	case <-l.done:
		return fmt.Errorf("hub relay: send: link closed")
	default:
	}
	return l.s.conn.Send(to, payload)
}

func (l *relayLink) Recv(ctx context.Context) (string, []byte, error) {
	select {
	case m := <-l.in:
		return m.from, m.payload, nil
	case <-l.done:
		return "", nil, errors.New("hub relay: link closed")
	case <-l.s.ended:
		return "", nil, fmt.Errorf("hub relay: session ended: %w", l.s.err)
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
}

// Close ends the link, and the session with its last link.
func (l *relayLink) Close() error {
	l.once.Do(func() {
		close(l.done)
		r := l.r
		r.mu.Lock()
		delete(l.s.links, l)
		last := len(l.s.links) == 0
		if last && r.sessions[l.s.group] == l.s {
			delete(r.sessions, l.s.group)
		}
		r.mu.Unlock()
		if last {
			l.s.conn.Close()
		}
	})
	return nil
}

var (
	_ protocols.Relayer   = (*relayer)(nil)
	_ protocols.RelayLink = (*relayLink)(nil)
	_ protocols.RelayLink = (*RelayConn)(nil)
)
