package protocols

import (
	"context"
	"errors"

	"github.com/rime-dev/rime/network"
)

// The capability interfaces below are what a layer offers the layers above
// it. They are message-oriented (bytes in, bytes out, a context, an
// error) so that any of them can later live out of process behind a
// plugin's RPC without its neighbours noticing. The capability names are
// the ones specs use in `provides` and `requires`.

// Layer is what every running protocol instance is.
type Layer interface {
	// Start begins the layer's work; the layers below are started first.
	Start(ctx context.Context) error
	// Close stops it and releases what it holds; the layers above are
	// closed first. Close is idempotent.
	Close() error
}

// Transport ("transport") reaches other nodes by address: datagrams and
// streams, multiplexed by service name (see package network).
type Transport interface {
	Layer
	Endpoint() network.Endpoint
}

// Resolver is implemented by transports whose addresses are not the
// nodes' IP addresses (hub-relay names a node by its ID). Resolve maps an
// entry of Node.Join (an address, or a node ID) to the address this
// transport reaches that node at; false if it cannot reach it (an
// address of another transport). Membership layers resolve their join
// entries through it; with a transport that is not a Resolver, join
// entries that are node IDs are left out.
type Resolver interface {
	Resolve(join string) (addr string, ok bool)
}

// MemberState is what failure detection believes of a member.
type MemberState int

const (
	MemberAlive MemberState = iota
	MemberSuspect
	MemberDead
	MemberLeft
)

func (s MemberState) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberSuspect:
		return "suspect"
	case MemberDead:
		return "dead"
	case MemberLeft:
		return "left"
	}
	return "unknown"
}

// Member is one node as membership sees it.
type Member struct {
	// ID is the node's identity (from its public key).
	ID string
	// Addr is the node's transport address.
	Addr string
	// NodeClass is the app's node class the node belongs to ("phone").
	NodeClass string
	State     MemberState
}

// MemberEvent is a change in the view.
type MemberEvent struct {
	Member Member
}

// Membership ("membership") keeps a view of the group's nodes.
type Membership interface {
	Layer
	// Self is this node.
	Self() Member
	// Members is the current view, this node included, sorted by ID.
	Members() []Member
	// Subscribe delivers every later change until cancel is called. Events
	// are not dropped; a subscriber that stops reading holds the view back
	// only for itself.
	Subscribe() (events <-chan MemberEvent, cancel func())
}

// Delivery is one broadcast message as delivered.
type Delivery struct {
	// From names the sender. A broadcast that numbers each sender's
	// messages (Seq > 0) names the sender as it numbers them: causal
	// broadcast uses the node's ID and an incarnation ("id.inc"), so
	// that a node that restarts never reuses a number.
	From    string
	Payload []byte
	// Seq is the message's number among From's messages (1, 2, 3, ...)
	// for broadcasts that number them, 0 for those that do not. It is
	// what CatchUp takes back.
	Seq uint64
}

// Broadcast ("broadcast") sends a message to every member.
type Broadcast interface {
	Layer
	Broadcast(ctx context.Context, payload []byte) error
	Deliveries() <-chan Delivery
}

// Numbered is implemented by broadcasts that number each sender's
// messages (Delivery.Seq > 0). BroadcastNumbered is Broadcast that also
// returns the message's From and Seq as Deliveries will name them, so
// that a layer above which tells others what it has delivered (the
// broadcast vector crdt-replication sends with a state) can count its own
// message at once, not only when it comes back through Deliveries.
type Numbered interface {
	BroadcastNumbered(ctx context.Context, payload []byte) (from string, seq uint64, err error)
}

// CatchUp is implemented by broadcasts that hold a message back until
// its causes are delivered (causal broadcast). A layer above that
// repairs its state by its own anti-entropy (crdt-replication) uses it
// so that the two repairs do not both send what a node missed:
//
//  1. DelegateRepair, before Start: the broadcast stops resending
//     missed messages itself;
//  2. CaughtUp(v) whenever the layer above holds the effects of every
//     message v covers (v maps Delivery.From to a Seq): the broadcast
//     counts them as delivered, never delivers them, and delivers what
//     waited for them.
type CatchUp interface {
	DelegateRepair()
	CaughtUp(v map[string]uint64)
}

// Entry is one committed log entry. Seq numbers the log's data entries
// 1, 2, 3, ... with no gaps: entries the protocol adds for itself
// (elections, configuration, compaction) are not numbered.
type Entry struct {
	Seq  uint64
	Data []byte
}

// Log ("log") is a totally ordered, replicated, compactable log.
type Log interface {
	Layer
	// Append proposes data and returns its Seq once it is committed. An
	// error leaves the outcome unknown: the entry may still commit.
	Append(ctx context.Context, data []byte) (uint64, error)
	// ReadIndex returns a Seq s such that every entry committed before
	// the call began has Seq <= s (a linearizable read of the log's end).
	ReadIndex(ctx context.Context) (uint64, error)
	// Follow returns this replica's committed entries from Seq from on,
	// in order. If from is below the compaction point the follower fails
	// with ErrCompacted at once: start from the snapshot instead.
	Follow(from uint64) Follower
	// Compact records, through the log itself so every replica agrees,
	// that state covers entries 1..upTo; entries up to upTo may then be
	// discarded. A Compact behind the current snapshot is ignored.
	Compact(ctx context.Context, upTo uint64, state []byte) error
	// Snapshot is this replica's latest compaction point and its state
	// (0 and nil before any).
	Snapshot() (upTo uint64, state []byte)
	// Ready blocks until the log can take appends (for Raft: the shard
	// has its replicas and a leader).
	Ready(ctx context.Context) error
}

// Follower reads a Log's committed entries in order.
type Follower interface {
	// Next blocks until the next entry is committed on this replica.
	Next(ctx context.Context) (Entry, error)
	Close()
}

// Replica ("replica", "local-replica") is a node's own replica of a
// class's convergent state (crdt-replication), as a channel uses it.
// Updates are numbered on each node: Entry.Seq b+1, b+2, b+3, ... in
// the order they became visible there, where the base b grows at each
// start of the replica, so that no Seq is reused after a restart (a causal order when the replica is causal),
// and an Entry's Data is a delta in package crdt's encoding. Follow and
// Follower are as for Log, without compaction through the log: Snapshot
// is the replica's own visible state.
type Replica interface {
	Layer
	// Apply performs op (crdt.MarshalOp's encoding) on the local replica
	// and returns once it is on this node's disk. It becomes visible (in
	// Follow) once acknowledged: durable on as many nodes as the layer
	// promises. An op the replica's type refuses is an error wrapping
	// ErrRefused.
	Apply(ctx context.Context, op []byte) error
	// Snapshot is the visible state (crdt encoding) and the Seq of the
	// last update in it.
	Snapshot() (seq uint64, state []byte)
	// Follow returns the visible updates from Seq from on, in order;
	// ErrCompacted if from is no longer kept.
	Follow(from uint64) Follower
	// Seen returns, once visible, the Seq of the last update this
	// replica held when Seen was called (its own applied updates
	// included, so Seen waits for their acknowledgement).
	Seen(ctx context.Context) (uint64, error)
}

// Store ("store") is a node's durable, versioned key-value storage.
type Store interface {
	Layer
	// Get returns the value and its version (0 and ErrNotFound if absent).
	Get(ctx context.Context, key string) (value []byte, version uint64, err error)
	// Put writes value if the key's version is still version (0: absent),
	// and returns the new version once it is on disk.
	Put(ctx context.Context, key string, value []byte, version uint64) (uint64, error)
	// Dir is a directory of the store's own for libraries that manage
	// their own files (dragonboat's log); it is created on first use.
	Dir(name string) (string, error)
}

// EventKind is the kind of a channel event.
type EventKind int

const (
	// Initialize carries the checkpoint c_n the component starts from.
	Initialize EventKind = iota + 1
	// Update carries update u_Seq.
	Update
	// RequestCheckpoint asks the component for its state after update
	// Seq; it answers with Session.Checkpoint(Seq, state).
	RequestCheckpoint
)

func (k EventKind) String() string {
	switch k {
	case Initialize:
		return "initialize"
	case Update:
		return "update"
	case RequestCheckpoint:
		return "request_checkpoint"
	}
	return "unknown"
}

// Event is one event of a channel session, in the order the session
// delivers them: one Initialize, then updates with contiguous Seq, with
// RequestCheckpoint events in between.
type Event struct {
	Kind EventKind
	Seq  uint64
	Data []byte
}

// Channel ("channel") is what applications use: the checkpointed channel.
type Channel interface {
	Layer
	// Connect opens a session on this node's proxy.
	Connect(ctx context.Context) (Session, error)
}

// Session is one connection of an application component to a channel
// proxy (connect ... disconnect).
type Session interface {
	// Events delivers the session's events; it is closed on disconnect,
	// after which Err says why.
	Events() <-chan Event
	// Submit asks for update to be appended to the channel. There is no
	// acknowledgement but the update's arrival in Events; if the update
	// cannot be accepted the session is disconnected, never silently
	// dropped. Submit returns an error only if the session is already
	// disconnected.
	Submit(ctx context.Context, update []byte) error
	// Checkpoint answers a RequestCheckpoint event for seq.
	Checkpoint(seq uint64, state []byte) error
	// Sync returns a Seq s such that every update submitted anywhere and
	// delivered anywhere before Sync was called has Seq <= s, once this
	// session has been sent every update up to s: a linearizable read.
	Sync(ctx context.Context) (uint64, error)
	// Disconnect ends the session.
	Disconnect()
	// Err is why the session ended (nil while it is connected, ErrDisconnected
	// after Disconnect).
	Err() error
}

// Errors of the layer interfaces.
var (
	// ErrCompacted: entries asked for are behind the compaction point.
	ErrCompacted = errors.New("log: entries compacted")
	// ErrNotFound: no such key.
	ErrNotFound = errors.New("store: not found")
	// ErrVersion: a Put whose version is no longer current.
	ErrVersion = errors.New("store: version conflict")
	// ErrDisconnected: the session was disconnected.
	ErrDisconnected = errors.New("channel: disconnected")
	// ErrClosed: the layer was closed.
	ErrClosed = errors.New("layer closed")
	// ErrRefused: an update the layer cannot apply (malformed, or an
	// operation of another type).
	ErrRefused = errors.New("update refused")
)

// Reporter is implemented by layers that have something to show in a
// live view (`rime up`): leader, term, members, progress. Keys are short
// and stable; values are JSON-encodable.
type Reporter interface {
	Report(ctx context.Context) (map[string]any, error)
}

// Notifier is implemented by layers whose Report changes in steps worth
// waiting for (a new leader, a member added): Changed returns a channel
// closed at the next such change, so a live view or a test waits for it
// instead of polling. Take the channel before reading the Report.
type Notifier interface {
	Changed() <-chan struct{}
}
