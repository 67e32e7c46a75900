package faultnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/rime-dev/rime/network"
)

// Faults are what the network does to this node's outgoing traffic.
// The zero value changes nothing. In JSON (the body of a node's
// /v1/faults) durations are Go duration strings:
// {"loss":0.05,"duplicate":0,"delay":"50ms","jitter":"10ms"}.
type Faults struct {
	// Loss is the probability that a datagram is dropped.
	Loss float64
	// Duplicate is the probability that a datagram is sent twice.
	Duplicate float64
	// Delay and Jitter: every datagram, and every write on a stream, is
	// held Delay plus a uniform [0, Jitter) before it leaves. Datagrams
	// may overtake each other (reordering); a stream keeps its order.
	Delay  time.Duration
	Jitter time.Duration
}

type faultsJSON struct {
	Loss      float64 `json:"loss"`
	Duplicate float64 `json:"duplicate"`
	Delay     string  `json:"delay,omitempty"`
	Jitter    string  `json:"jitter,omitempty"`
}

// MarshalJSON writes durations as strings ("50ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{Loss: f.Loss, Duplicate: f.Duplicate, Delay: f.Delay.String(), Jitter: f.Jitter.String()})
}

// UnmarshalJSON reads what MarshalJSON writes, strictly (no unknown
// fields), and validates it.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faultnet: %w", err)
	}
	out := Faults{Loss: j.Loss, Duplicate: j.Duplicate}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{j.Delay, &out.Delay}, {j.Jitter, &out.Jitter}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("faultnet: %q: want a duration such as 50ms", d.s)
		}
		*d.dst = v
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*f = out
	return nil
}

// Validate names the field that is out of range.
func (f Faults) Validate() error {
	switch {
	case f.Loss < 0 || f.Loss > 1:
		return fmt.Errorf("faultnet: loss %v: want a probability in [0, 1]", f.Loss)
	case f.Duplicate < 0 || f.Duplicate > 1:
		return fmt.Errorf("faultnet: duplicate %v: want a probability in [0, 1]", f.Duplicate)
	case f.Delay < 0 || f.Jitter < 0 || f.Delay > time.Minute || f.Jitter > time.Minute:
		return fmt.Errorf("faultnet: delay %v, jitter %v: want each in [0, 1m]", f.Delay, f.Jitter)
	}
	return nil
}

// Network wraps another Network; Set changes the faults of every
// endpoint it listened, at once.
type Network struct {
	inner network.Network

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
}

// Wrap returns inner with faults injected on the way out; seed makes the
// random choices reproducible.
func Wrap(inner network.Network, seed uint64) *Network {
	return &Network{inner: inner, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Set replaces the faults.
func (n *Network) Set(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	n.mu.Lock()
	n.faults = f
	n.mu.Unlock()
	return nil
}

// Faults are the faults now in force.
func (n *Network) Faults() Faults {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.faults
}

// plan decides one datagram's fate: how many copies leave (0, 1 or 2)
// and after how long each.
func (n *Network) plan() (copies int, delays [2]time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.faults
	if f.Loss > 0 && n.rng.Float64() < f.Loss {
		return 0, delays
	}
	copies = 1
	if f.Duplicate > 0 && n.rng.Float64() < f.Duplicate {
		copies = 2
	}
	for i := range copies {
		delays[i] = n.delayLocked(f)
	}
	return copies, delays
}

func (n *Network) delay() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.delayLocked(n.faults)
}

func (n *Network) delayLocked(f Faults) time.Duration {
	d := f.Delay
	if f.Jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(f.Jitter)))
	}
	return d
}

// Listen attaches a node through the inner network.
func (n *Network) Listen(addr string) (network.Endpoint, error) {
	ep, err := n.inner.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &endpoint{Endpoint: ep, n: n}, nil
}

type endpoint struct {
	network.Endpoint
	n *Network
}

// Send sends zero, one or two copies of the datagram, each after its
// delay. A delayed copy leaves from a goroutine of its own, so Send
// still does not block; its error, like a lost datagram, goes unseen.
func (e *endpoint) Send(ctx context.Context, to, service string, payload []byte) error {
	copies, delays := e.n.plan()
	var err error
	for i := range copies {
		if delays[i] == 0 {
			err = e.Endpoint.Send(ctx, to, service, payload)
			continue
		}
		p := append([]byte(nil), payload...)
		time.AfterFunc(delays[i], func() { e.Endpoint.Send(context.Background(), to, service, p) })
	}
	return err
}

// Dial opens a stream whose writes are delayed, in order.
func (e *endpoint) Dial(ctx context.Context, to, service string) (net.Conn, error) {
	c, err := e.Endpoint.Dial(ctx, to, service)
	if err != nil {
		return nil, err
	}
	return newSlowConn(c, e.n), nil
}

// Open claims a service; the streams it accepts are delayed on their way
// out, like the ones this node dials.
func (e *endpoint) Open(service string) (network.Port, error) {
	p, err := e.Endpoint.Open(service)
	if err != nil {
		return nil, err
	}
	return &port{Port: p, n: e.n}, nil
}

type port struct {
	network.Port
	n *Network
}

func (p *port) Accept() (net.Conn, error) {
	c, err := p.Port.Accept()
	if err != nil {
		return nil, err
	}
	return newSlowConn(c, p.n), nil
}
