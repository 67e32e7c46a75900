package causal

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/rime-dev/rime/crdt/vv"
)

// MsgID names a message: its sender and the sender's seq for it (from 1).
type MsgID = vv.Dot

// Msg is one broadcast message.
type Msg struct {
	ID MsgID
	// Deps is the message's causal past: for each node, the number of its
	// messages the sender had delivered when it broadcast this one.
	// Deps[ID.Replica] is ID.Seq-1.
	Deps    vv.VV
	Payload []byte
}

// Ready is what the driver must do after a call: deliver Deliver to the
// layer above in this order, and disseminate Send.
type Ready struct {
	Deliver []Msg
	Send    []Msg
}

// Config configures a Node.
type Config struct {
	// ID is this node's ID, unique in the group.
	ID string
	// Start is the delivered vector to resume from: a node that restarts
	// passes the vector it had persisted (its own entry is the seq of its
	// last broadcast). Empty for a new node.
	Start vv.VV
	// MaxPending bounds how many messages wait for their causes. A
	// partition heals with a burst of messages from the other side,
	// mostly deliverable in order; what must wait is what overtook a
	// lost or slow message, so a few thousand is plenty.
	MaxPending int
	// MaxPendingBytes bounds the payload bytes of waiting messages, so
	// that large payloads cannot exhaust memory below MaxPending.
	MaxPendingBytes int
}

// DefaultConfig is the configuration of node id with the default bounds.
func DefaultConfig(id string) Config {
	return Config{ID: id, MaxPending: 4096, MaxPendingBytes: 16 << 20}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("causal: Config.ID is empty"))
	}
	if c.MaxPending < 1 {
		errs = append(errs, fmt.Errorf("causal: Config.MaxPending is %d, want at least 1", c.MaxPending))
	}
	if c.MaxPendingBytes < 1 {
		errs = append(errs, fmt.Errorf("causal: Config.MaxPendingBytes is %d, want at least 1", c.MaxPendingBytes))
	}
	return errors.Join(errs...)
}

// Errors.
var (
	// ErrBufferFull: a message had to wait and the hold-back buffer is
	// full. The node did not take the message.
	ErrBufferFull = errors.New("causal: hold-back buffer full")
	// ErrInvalid: a message that no correct node sends.
	ErrInvalid = errors.New("causal: invalid message")
)

// Node is one member's causal delivery state. It is not safe for
// concurrent use.
type Node struct {
	cfg       Config
	delivered vv.VV
	// pending holds waiting messages by sender, then seq.
	pending      map[string]map[uint64]Msg
	npending     int
	pendingBytes int
	duplicates   uint64
}

// New makes a node. The config is copied.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, delivered: cfg.Start.Clone(), pending: map[string]map[uint64]Msg{}}
	n.cfg.Start = nil
	return n, nil
}

// ID is the node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// Delivered is the node's delivered vector (a copy): persist it to
// resume with Config.Start.
func (n *Node) Delivered() vv.VV { return n.delivered.Clone() }

// Broadcast makes a message of payload, delivers it locally and returns
// it to be sent. The payload is copied.
func (n *Node) Broadcast(payload []byte) Ready {
	m := Msg{
		ID:      MsgID{Replica: n.cfg.ID, Seq: n.delivered[n.cfg.ID] + 1},
		Deps:    n.delivered.Clone(),
		Payload: slices.Clone(payload),
	}
	n.delivered[n.cfg.ID] = m.ID.Seq
	return Ready{Deliver: []Msg{m}, Send: []Msg{m}}
}

// check refuses messages no correct node sends.
func (n *Node) check(m Msg) error {
	s := m.ID.Replica
	switch {
	case s == "":
		return fmt.Errorf("%w: no sender", ErrInvalid)
	case m.ID.Seq == 0 || m.ID.Seq > vv.MaxSeq:
		return fmt.Errorf("%w: %v: seq out of range", ErrInvalid, m.ID)
	case m.Deps[s] != m.ID.Seq-1:
		return fmt.Errorf("%w: %v depends on %d of its sender's messages", ErrInvalid, m.ID, m.Deps[s])
	case s == n.cfg.ID && m.ID.Seq > n.delivered[s]:
		// This node's own message that it does not remember sending: it
		// lost its state, or another node uses its ID.
		return fmt.Errorf("%w: %v is from this node, which has sent only %d", ErrInvalid, m.ID, n.delivered[s])
	}
	return nil
}

// Step takes a message received from the network.
func (n *Node) Step(m Msg) (Ready, error) {
	if err := n.check(m); err != nil {
		return Ready{}, err
	}
	if n.delivered.Covers(m.ID) || n.isPending(m.ID) {
		n.duplicates++
		return Ready{}, nil
	}
	var rd Ready
	if n.deliverable(m) {
		n.deliver(&rd, m)
	} else {
		if n.npending >= n.cfg.MaxPending || n.pendingBytes+len(m.Payload) > n.cfg.MaxPendingBytes {
			return Ready{}, fmt.Errorf("%w: %v waits for %v; %d messages (%d bytes) wait already, the limits are %d and %d bytes",
				ErrBufferFull, m.ID, n.missing(m), n.npending, n.pendingBytes, n.cfg.MaxPending, n.cfg.MaxPendingBytes)
		}
		n.hold(m)
	}
	rd.Send = []Msg{m}
	n.drain(&rd)
	return rd, nil
}

// Catchup counts the messages v covers as delivered: the layer above has
// their effects from elsewhere. Waiting messages it covers are dropped,
// and the Ready holds what that unblocks. Messages it skips are not in
// Ready.Deliver.
func (n *Node) Catchup(v vv.VV) Ready {
	for _, r := range v.Replicas() {
		k := v[r]
		if r == n.cfg.ID || k <= n.delivered[r] {
			continue
		}
		n.delivered[r] = k
		for seq, m := range n.pending[r] {
			if seq <= k {
				n.unhold(m)
			}
		}
	}
	var rd Ready
	n.drain(&rd)
	return rd
}

func (n *Node) isPending(id MsgID) bool {
	_, ok := n.pending[id.Replica][id.Seq]
	return ok
}

func (n *Node) deliverable(m Msg) bool {
	s := m.ID.Replica
	if m.ID.Seq != n.delivered[s]+1 {
		return false
	}
	for r, k := range m.Deps {
		if r != s && n.delivered[r] < k {
			return false
		}
	}
	return true
}

// missing is what m waits for.
func (n *Node) missing(m Msg) *vv.Dots {
	d := &vv.Dots{}
	for r, k := range m.Deps {
		if have := n.delivered[r]; have < k {
			d.AddRange(r, have+1, k)
		}
	}
	return d
}

func (n *Node) deliver(rd *Ready, m Msg) {
	n.delivered[m.ID.Replica] = m.ID.Seq
	rd.Deliver = append(rd.Deliver, m)
}

func (n *Node) hold(m Msg) {
	q := n.pending[m.ID.Replica]
	if q == nil {
		q = map[uint64]Msg{}
		n.pending[m.ID.Replica] = q
	}
	q[m.ID.Seq] = m
	n.npending++
	n.pendingBytes += len(m.Payload)
}

func (n *Node) unhold(m Msg) {
	q := n.pending[m.ID.Replica]
	delete(q, m.ID.Seq)
	if len(q) == 0 {
		delete(n.pending, m.ID.Replica)
	}
	n.npending--
	n.pendingBytes -= len(m.Payload)
}

// drain delivers waiting messages until none is deliverable. Only the
// next message of each sender can be, so a pass looks at one message per
// sender; senders go in name order so that delivery order is a function
// of the inputs.
func (n *Node) drain(rd *Ready) {
	for progress := true; progress; {
		progress = false
		for _, s := range slices.Sorted(maps.Keys(n.pending)) {
			for {
				m, ok := n.pending[s][n.delivered[s]+1]
				if !ok || !n.deliverable(m) {
					break
				}
				n.unhold(m)
				n.deliver(rd, m)
				progress = true
			}
		}
	}
}

// Waiting is a message in the hold-back buffer and the messages it
// waits for.
type Waiting struct {
	ID      MsgID
	Missing *vv.Dots
}

// Pending lists the waiting messages, by ID.
func (n *Node) Pending() []Waiting {
	var out []Waiting
	for _, q := range n.pending {
		for _, m := range q {
			out = append(out, Waiting{ID: m.ID, Missing: n.missing(m)})
		}
	}
	slices.SortFunc(out, func(a, b Waiting) int { return a.ID.Compare(b.ID) })
	return out
}

// Stats are counters for a live view.
type Stats struct {
	Pending, PendingBytes int
	// Duplicates is how many messages Step ignored as already delivered
	// or waiting.
	Duplicates uint64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{Pending: n.npending, PendingBytes: n.pendingBytes, Duplicates: n.duplicates}
}
