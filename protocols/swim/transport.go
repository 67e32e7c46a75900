package swim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rime-dev/rime/network"
)

// EndpointTransport is a memberlist.NodeAwareTransport over one service
// of a rime network.Endpoint: memberlist's packets are the service's
// datagrams and its streams are the service's streams. Every byte
// memberlist sends therefore crosses rime's Network, so a fault injected
// there (memnet's partitions, loss, crashes) reaches failure detection
// exactly as it reaches every other layer.
type EndpointTransport struct {
	ep      network.Endpoint
	service string
	port    network.Port

	// ctx bounds every Send and Dial; Shutdown cancels it so that no call
	// outlives the transport.
	ctx    context.Context
	cancel context.CancelFunc

	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// NewEndpointTransport opens service on ep and starts feeding what
// arrives there to memberlist. The caller hands the transport to
// memberlist (Config.Transport), whose Shutdown shuts it down.
func NewEndpointTransport(ep network.Endpoint, service string) (*EndpointTransport, error) {
	if ep == nil {
		return nil, errors.New("swim: transport: no endpoint")
	}
	// Checked here rather than at the first FinalAdvertiseAddr so that a
	// bad address fails before a port is claimed.
	if _, _, err := splitAddr(ep.Addr()); err != nil {
		return nil, fmt.Errorf("swim: transport: endpoint %w", err)
	}
	port, err := ep.Open(service)
	if err != nil {
		return nil, fmt.Errorf("swim: transport: open %q on %s: %w", service, ep.Addr(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &EndpointTransport{
		ep:      ep,
		service: service,
		port:    port,
		ctx:     ctx,
		cancel:  cancel,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	t.wg.Add(2)
	go t.feedPackets()
	go t.feedStreams()
	return t, nil
}

// feedPackets hands the port's datagrams to memberlist. The timestamp is
// taken as the datagram leaves the port's queue, the closest this layer
// gets to its arrival, since memberlist measures probe round trips with
// it.
func (t *EndpointTransport) feedPackets() {
	defer t.wg.Done()
	in := t.port.Packets()
	for {
		select {
		case p, ok := <-in:
			if !ok {
				return // the port or the whole endpoint closed (a crash)
			}
			pk := &memberlist.Packet{Buf: p.Payload, From: peerAddr(p.From), Timestamp: time.Now()}
			select {
			case t.packets <- pk:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

// feedStreams hands the port's incoming streams to memberlist.
func (t *EndpointTransport) feedStreams() {
	defer t.wg.Done()
	for {
		c, err := t.port.Accept()
		if err != nil {
			if errors.Is(err, network.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return
			}
			// Any other error is taken as transient (a real listener's
			// EMFILE, say): back off a little instead of spinning.
			select {
			case <-t.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		select {
		case t.streams <- c:
		case <-t.done:
			c.Close()
			return
		}
	}
}

// FinalAdvertiseAddr returns the endpoint's address whatever memberlist
// was configured with: the endpoint is the only place this node can be
// reached at through this transport.
func (t *EndpointTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	ip, port, err := splitAddr(t.ep.Addr())
	if err != nil {
		return nil, 0, fmt.Errorf("swim: transport: endpoint %w", err)
	}
	return ip, port, nil
}

// WriteTo sends b as one datagram to the service at addr.
func (t *EndpointTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if err := t.ep.Send(t.ctx, addr, t.service, b); err != nil {
		return time.Time{}, fmt.Errorf("swim: transport: send to %s: %w", addr, err)
	}
	return time.Now(), nil
}

// WriteToAddress is WriteTo; rime addresses whole nodes, so the name
// memberlist adds is not needed to route.
func (t *EndpointTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh delivers incoming datagrams.
func (t *EndpointTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout opens a stream to the service at addr within timeout.
func (t *EndpointTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	c, err := t.ep.Dial(ctx, addr, t.service)
	if err != nil {
		return nil, fmt.Errorf("swim: transport: dial %s: %w", addr, err)
	}
	return c, nil
}

// DialAddressTimeout is DialTimeout (see WriteToAddress).
func (t *EndpointTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// StreamCh delivers incoming streams.
func (t *EndpointTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown releases the service and stops the goroutines feeding
// memberlist; it returns once they are gone, as memberlist expects. It is
// idempotent. The endpoint itself stays up: it belongs to the transport
// layer below.
func (t *EndpointTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		t.cancel()
		if cerr := t.port.Close(); cerr != nil && !errors.Is(cerr, network.ErrClosed) {
			err = fmt.Errorf("swim: transport: close %q: %w", t.service, cerr)
		}
		t.wg.Wait()
	})
	return err
}

// splitAddr parses a rime address, always "ip:port".
func splitAddr(addr string) (net.IP, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("address %q: want ip:port: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, 0, fmt.Errorf("address %q: %q is not an IP address", addr, host)
	}
	if ip.IsUnspecified() {
		// A listener's wildcard address: nobody can reach a node at it.
		return nil, 0, fmt.Errorf("address %q: unspecified IP, not one others can reach", addr)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("address %q: bad port: %w", addr, err)
	}
	return ip, int(port), nil
}

// peerAddr is a sender's rime address as the net.Addr memberlist wants;
// memberlist only ever uses its String.
type peerAddr string

func (a peerAddr) Network() string { return "rime" }
func (a peerAddr) String() string  { return string(a) }

var _ memberlist.NodeAwareTransport = (*EndpointTransport)(nil)
