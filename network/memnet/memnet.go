package memnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rime-dev/rime/network"
)

// Network is the in-process network. The zero value is not usable: call New.
type Network struct {
	mu      sync.Mutex
	rng     *rand.Rand
	nodes   map[string]*endpoint
	blocked map[link]bool
	group   map[string]int // partition group per address; absent: unconstrained

	loss, dup, reorder float64
	delay, jitter      time.Duration

	stats struct {
		sent, delivered, dropped, lost, duplicated, reordered, cut atomic.Int64
	}
}

type link struct{ from, to string }

// Stats counts datagrams: Sent by endpoints, Delivered to ports, Lost to
// injected loss, Cut by partitions or crashed receivers, Dropped because
// nobody listened or a queue was full, Duplicated and Reordered by
// injection.
type Stats struct {
	Sent, Delivered, Lost, Cut, Dropped, Duplicated, Reordered int64
}

// New returns an empty network whose random faults draw from seed.
func New(seed uint64) *Network {
	return &Network{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nodes:   map[string]*endpoint{},
		blocked: map[link]bool{},
		group:   map[string]int{},
	}
}

// Listen attaches a node at addr. An address may be reused once the node
// that held it closed or crashed: that is how a node restarts.
func (n *Network) Listen(addr string) (network.Endpoint, error) {
	if addr == "" {
		return nil, fmt.Errorf("memnet: listen: empty address")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, taken := n.nodes[addr]; taken {
		return nil, fmt.Errorf("memnet: listen %s: address in use", addr)
	}
	ep := &endpoint{net: n, addr: addr, ports: map[string]*port{}}
	n.nodes[addr] = ep
	return ep, nil
}

// Partition splits the listed nodes into groups that cannot reach each
// other in either direction. Nodes not listed keep reaching everyone. A
// new Partition replaces the previous one; streams across the cut break.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	n.group = map[string]int{}
	for i, g := range groups {
		for _, a := range g {
			n.group[a] = i
		}
	}
	n.mu.Unlock()
	n.breakCutStreams()
}

// Block cuts the link from -> to only (an asymmetric partition); streams
// between the two break, since TCP needs both directions.
func (n *Network) Block(from, to string) {
	n.mu.Lock()
	n.blocked[link{from, to}] = true
	n.mu.Unlock()
	n.breakCutStreams()
}

// Heal removes every partition and block.
func (n *Network) Heal() {
	n.mu.Lock()
	n.group = map[string]int{}
	n.blocked = map[link]bool{}
	n.mu.Unlock()
}

// SetLoss makes each datagram lost with probability p.
func (n *Network) SetLoss(p float64) { n.mu.Lock(); n.loss = p; n.mu.Unlock() }

// SetDuplicate makes each datagram delivered twice with probability p.
func (n *Network) SetDuplicate(p float64) { n.mu.Lock(); n.dup = p; n.mu.Unlock() }

// SetReorder holds back each datagram with probability p by a few
// milliseconds beyond its delay, so later ones overtake it.
func (n *Network) SetReorder(p float64) { n.mu.Lock(); n.reorder = p; n.mu.Unlock() }

// SetDelay delays each datagram by base plus a uniform jitter in
// [0, jitter), and each stream write by base.
func (n *Network) SetDelay(base, jitter time.Duration) {
	n.mu.Lock()
	n.delay, n.jitter = base, jitter
	n.mu.Unlock()
}

// Crash makes the node at addr vanish as a power cut would: no goodbye to
// anyone. It reports whether a node was there.
func (n *Network) Crash(addr string) bool {
	n.mu.Lock()
	ep := n.nodes[addr]
	n.mu.Unlock()
	if ep == nil {
		return false
	}
	ep.Close()
	return true
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats {
	s := &n.stats
	return Stats{Sent: s.sent.Load(), Delivered: s.delivered.Load(), Lost: s.lost.Load(), Cut: s.cut.Load(),
		Dropped: s.dropped.Load(), Duplicated: s.duplicated.Load(), Reordered: s.reordered.Load()}
}

// reachableLocked: may a datagram go from -> to now?
func (n *Network) reachableLocked(from, to string) bool {
	if n.blocked[link{from, to}] {
		return false
	}
	gf, okf := n.group[from]
	gt, okt := n.group[to]
	return !okf || !okt || gf == gt
}

// send is the fate of one datagram: cut, lost, delayed, duplicated,
// reordered, then delivered.
func (n *Network) send(from, to, service string, payload []byte) {
	n.stats.sent.Add(1)
	n.mu.Lock()
	if !n.reachableLocked(from, to) || n.nodes[to] == nil {
		n.mu.Unlock()
		n.stats.cut.Add(1)
		return
	}
	if n.loss > 0 && n.rng.Float64() < n.loss {
		n.mu.Unlock()
		n.stats.lost.Add(1)
		return
	}
	copies := 1
	if n.dup > 0 && n.rng.Float64() < n.dup {
		copies = 2
		n.stats.duplicated.Add(1)
	}
	delays := make([]time.Duration, copies)
	for i := range delays {
		d := n.delay
		if n.jitter > 0 {
			d += time.Duration(n.rng.Int64N(int64(n.jitter)))
		}
		if n.reorder > 0 && n.rng.Float64() < n.reorder {
			d += time.Millisecond + time.Duration(n.rng.Int64N(int64(4*time.Millisecond)))
			n.stats.reordered.Add(1)
		}
		delays[i] = d
	}
	n.mu.Unlock()
	for _, d := range delays {
		p := network.Packet{From: from, Payload: append([]byte(nil), payload...)}
		if d <= 0 {
			n.deliver(to, service, p)
			continue
		}
		time.AfterFunc(d, func() { n.deliver(to, service, p) })
	}
}

// deliver hands a datagram to its port, re-checking the cut: a partition
// installed while it was in flight still stops it.
func (n *Network) deliver(to, service string, p network.Packet) {
	n.mu.Lock()
	ep := n.nodes[to]
	ok := ep != nil && n.reachableLocked(p.From, to)
	n.mu.Unlock()
	if !ok {
		n.stats.cut.Add(1)
		return
	}
	if ep.deliver(service, p) {
		n.stats.delivered.Add(1)
	} else {
		n.stats.dropped.Add(1)
	}
}

// breakCutStreams closes every stream whose two ends can no longer reach
// each other both ways.
func (n *Network) breakCutStreams() {
	n.mu.Lock()
	var cut []*stream
	for _, ep := range n.nodes {
		ep.mu.Lock()
		for s := range ep.streams {
			if !n.reachableLocked(s.local, s.remote) || !n.reachableLocked(s.remote, s.local) {
				cut = append(cut, s)
			}
		}
		ep.mu.Unlock()
	}
	n.mu.Unlock()
	for _, s := range cut {
		s.Close()
	}
}

// dial connects a stream from -> to:service.
func (n *Network) dial(ctx context.Context, from, to, service string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	src, dst := n.nodes[from], n.nodes[to]
	ok := dst != nil && n.reachableLocked(from, to) && n.reachableLocked(to, from)
	delay := n.delay
	n.mu.Unlock()
	if src == nil {
		return nil, fmt.Errorf("memnet: dial %s/%s: %w", to, service, network.ErrClosed)
	}
	if !ok {
		return nil, fmt.Errorf("memnet: dial %s/%s from %s: %w", to, service, from, network.ErrUnreachable)
	}
	a, b := net.Pipe()
	local := &stream{Conn: a, local: from, remote: to, delay: delay, owner: src}
	remote := &stream{Conn: b, local: to, remote: from, delay: delay, owner: dst}
	local.peer, remote.peer = remote, local
	src.track(local)
	dst.track(remote)
	if err := dst.accept(ctx, service, remote); err != nil {
		local.Close()
		return nil, fmt.Errorf("memnet: dial %s/%s: %w", to, service, err)
	}
	return local, nil
}

type endpoint struct {
	net  *Network
	addr string

	mu      sync.Mutex
	closed  bool
	ports   map[string]*port
	streams map[*stream]struct{}
}

func (e *endpoint) Addr() string { return e.addr }

func (e *endpoint) Open(service string) (network.Port, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, network.ErrClosed
	}
	if _, taken := e.ports[service]; taken {
		return nil, fmt.Errorf("memnet %s: open %q: %w", e.addr, service, network.ErrServiceTaken)
	}
	p := &port{ep: e, service: service, Inbox: network.NewInbox(), conns: make(chan net.Conn)}
	e.ports[service] = p
	return p, nil
}

func (e *endpoint) Send(ctx context.Context, to, service string, payload []byte) error {
	if len(payload) > network.MaxDatagram {
		return fmt.Errorf("memnet: send %d bytes to %s/%s: %w", len(payload), to, service, network.ErrTooLarge)
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return network.ErrClosed
	}
	e.net.send(e.addr, to, service, payload)
	return nil
}

func (e *endpoint) Dial(ctx context.Context, to, service string) (net.Conn, error) {
	return e.net.dial(ctx, e.addr, to, service)
}

// Close detaches the node; it is also how Crash works, since an
// in-process node has no goodbye to send either way.
func (e *endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ports := e.ports
	e.ports = map[string]*port{}
	streams := e.streams
	e.streams = nil
	e.mu.Unlock()

	e.net.mu.Lock()
	if e.net.nodes[e.addr] == e {
		delete(e.net.nodes, e.addr)
	}
	e.net.mu.Unlock()
	for _, p := range ports {
		p.Shut()
	}
	for s := range streams {
		s.Close()
	}
	return nil
}

func (e *endpoint) deliver(service string, p network.Packet) bool {
	e.mu.Lock()
	pt := e.ports[service]
	e.mu.Unlock()
	if pt == nil {
		return false
	}
	return pt.Deliver(p)
}

func (e *endpoint) accept(ctx context.Context, service string, s *stream) error {
	e.mu.Lock()
	pt := e.ports[service]
	e.mu.Unlock()
	if pt == nil {
		return network.ErrRefused
	}
	select {
	case pt.conns <- s:
		return nil
	case <-pt.Done():
		return network.ErrRefused
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *endpoint) track(s *stream) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		go s.Close()
		return
	}
	if e.streams == nil {
		e.streams = map[*stream]struct{}{}
	}
	e.streams[s] = struct{}{}
}

func (e *endpoint) untrack(s *stream) {
	e.mu.Lock()
	delete(e.streams, s)
	e.mu.Unlock()
}

type port struct {
	ep      *endpoint
	service string
	*network.Inbox
	conns chan net.Conn
}

func (p *port) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.Done():
		return nil, network.ErrClosed
	}
}

func (p *port) Addr() net.Addr { return Addr(p.ep.addr) }

// Close releases the service name; the endpoint stays up.
func (p *port) Close() error {
	p.ep.mu.Lock()
	if p.ep.ports[p.service] == p {
		delete(p.ep.ports, p.service)
	}
	p.ep.mu.Unlock()
	p.Shut()
	return nil
}

// stream is one end of an in-process connection.
type stream struct {
	net.Conn
	local, remote string
	delay         time.Duration
	owner         *endpoint
	peer          *stream
	closed        atomic.Bool
}

func (s *stream) Write(b []byte) (int, error) {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	return s.Conn.Write(b)
}

// Close closes both ends, as a broken TCP connection is broken for both.
func (s *stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.owner.untrack(s)
	s.Conn.Close()
	if s.peer != nil {
		s.peer.Close()
	}
	return nil
}

func (s *stream) LocalAddr() net.Addr  { return Addr(s.local) }
func (s *stream) RemoteAddr() net.Addr { return Addr(s.remote) }

// Addr is a memnet address as a net.Addr.
type Addr string

func (a Addr) Network() string { return "memnet" }
func (a Addr) String() string  { return string(a) }

var (
	_ network.Network  = (*Network)(nil)
	_ network.Endpoint = (*endpoint)(nil)
	_ network.Port     = (*port)(nil)
)
