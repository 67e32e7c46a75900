package hubrelay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/seal"
)

// Name is the protocol's name in specs and plans.
const Name = "hub-relay"

func init() {
	protocols.Default.MustRegister(NewModule(DefaultConfig()))
}

// NewModule is the hub-relay module with configuration c, for a registry
// of one's own; the default registry holds NewModule(DefaultConfig()).
func NewModule(c Config) protocols.Module {
	return protocols.Module{Name: Name, Provides: []string{"transport"},
		New: func() protocols.Instance { return New(c) }}
}

// Transport is the hub-relay transport layer: its Endpoint reaches the
// group's members through the hub's relay. See the package documentation.
type Transport struct {
	cfg     Config
	changes *changes

	mu      sync.Mutex
	ec      endpointConfig
	relays  int
	prov    bool
	ep      *endpoint
	started bool
	closed  bool
}

// New returns an unprovisioned transport with configuration c (copied).
func New(c Config) *Transport { return &Transport{cfg: c, changes: newChanges()} }

// Provision takes the relayer, the node's key and ID, the group and the
// class from env, and derives the class's datagram key and frame tag from
// the group secret. The plan's one parameter, `relays` (how many relay
// hosts the plan counted on, 1 to 3), is checked and reported: the
// transport itself attaches to one hub replica at a time and fails over
// to any replica the hub client knows.
func (t *Transport) Provision(env *protocols.Env) error {
	if env == nil {
		return errors.New("hub-relay: provision: no environment")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.prov {
		return errors.New("hub-relay: provisioned twice")
	}
	relays, err := env.IntParam("relays", 1)
	if err != nil {
		return fmt.Errorf("hub-relay: %w", err)
	}
	for name := range env.Params {
		if name != "relays" {
			return fmt.Errorf("hub-relay: unknown parameter %q: it takes only relays", name)
		}
	}
	dkey, err := env.DeriveKey("hub-relay/datagram", 32)
	if err != nil {
		return fmt.Errorf("hub-relay: datagram key: %w", err)
	}
	// The class is sealed into every datagram, so one class's datagrams
	// are never taken for another's.
	s, err := seal.New(dkey, "hub-relay/"+env.Class)
	if err != nil {
		return fmt.Errorf("hub-relay: %w", err)
	}
	tg, err := env.DeriveKey("hub-relay/tag/"+env.Class, tagSize)
	if err != nil {
		return fmt.Errorf("hub-relay: frame tag: %w", err)
	}
	lg := env.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	t.ec = endpointConfig{
		cfg: t.cfg, id: env.Node.ID, key: slices.Clone(env.Node.Key),
		group: env.Group, class: env.Class, relayer: env.Relayer,
		tag: tag(tg), seal: s, log: lg, changes: t.changes,
	}
	t.relays = relays
	t.prov = true
	return nil
}

// Validate checks the configuration and what Provision took from env.
func (t *Transport) Validate() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.prov {
		return errors.New("hub-relay: validate before provision")
	}
	if err := t.cfg.Validate(); err != nil {
		return err
	}
	c := t.ec
	switch {
	case c.relayer == nil:
		return errors.New("hub-relay: env.Relayer is nil: the node needs a hub client (node.Config.Relayer) to relay through")
	case c.group == "":
		return errors.New("hub-relay: env.Group is empty: the relay forwards within a group")
	case len(c.key) != ed25519.PrivateKeySize:
		return fmt.Errorf("hub-relay: env.Node.Key has %d bytes, want an ed25519 private key of %d", len(c.key), ed25519.PrivateKeySize)
	case t.relays < 1 || t.relays > 3:
		return fmt.Errorf("hub-relay: parameter relays = %d: want 1 to 3", t.relays)
	}
	if id := identity.IDOf(c.key.Public().(ed25519.PublicKey)); id != c.id {
		return fmt.Errorf("hub-relay: env.Node.ID %q is not the ID of env.Node.Key (%s): the relay and TLS name nodes by their key", c.id, id)
	}
	return nil
}

// Start listens for QUIC connections and attaches to the hub's relay,
// returning once attached (or with an error when no replica took the
// attach within Config.AttachTimeout and ctx). From then on the transport
// keeps itself attached, reattaching when its replica fails.
func (t *Transport) Start(ctx context.Context) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("hub-relay: start: %w", protocols.ErrClosed)
	}
	if t.started {
		t.mu.Unlock()
		return errors.New("hub-relay: started twice")
	}
	ep, err := t.endpointLocked()
	if err != nil {
		t.mu.Unlock()
		return err
	}
	t.started = true
	t.mu.Unlock()
	if err := ep.start(ctx); err != nil {
		ep.Close()
		return err
	}
	return nil
}

// Close closes the endpoint (this layer owns it, unlike tcp-mtls, which
// lends the node's). It is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	ep := t.ep
	t.closed = true
	t.mu.Unlock()
	if ep != nil {
		return ep.Close()
	}
	return nil
}

// Endpoint is the relay endpoint.
//
// The layers above take it when they are provisioned, before Start, so it
// exists from Provision on (nothing of it is observable before Start:
// it is built, not attached); nil only before Provision or if it cannot
// be built (Validate then says why).
func (t *Transport) Endpoint() network.Endpoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.prov || t.closed {
		return nil
	}
	ep, err := t.endpointLocked()
	if err != nil {
		return nil
	}
	return ep
}

// endpointLocked builds the endpoint once.
func (t *Transport) endpointLocked() (*endpoint, error) {
	if t.ep == nil {
		ep, err := newEndpoint(t.ec)
		if err != nil {
			return nil, err
		}
		t.ep = ep
	}
	return t.ep, nil
}

// Stats counts what the transport did.
type Stats struct {
	// Attached: the node is attached to a hub replica now. Attaches
	// counts successful attaches (more than one: it reattached).
	Attached bool
	Attaches int
	// LastError is why the last attach failed or the last attachment
	// ended (nil while attached).
	LastError error
	// DatagramsSent and DatagramsReceived count datagrams; Dropped counts
	// datagrams and QUIC packets lost here (not attached, full queues,
	// no port); Refused counts frames that failed their checks (seal,
	// sender, format).
	DatagramsSent, DatagramsReceived, Dropped, Refused int64
	// PacketsSent and PacketsReceived count QUIC packets.
	PacketsSent, PacketsReceived int64
}

// Stats returns the counters so far (zero before Start).
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	ep := t.ep
	t.mu.Unlock()
	if ep == nil {
		return Stats{}
	}
	ep.mu.Lock()
	st := Stats{Attached: ep.link != nil, Attaches: ep.attaches, LastError: ep.lastErr}
	ep.mu.Unlock()
	s := &ep.stats
	st.DatagramsSent, st.DatagramsReceived = s.sent.Load(), s.received.Load()
	st.Dropped, st.Refused = s.dropped.Load(), s.refused.Load()
	st.PacketsSent, st.PacketsReceived = s.packetsOut.Load(), s.packetsIn.Load()
	return st
}

// Report is what a live view shows of the transport.
func (t *Transport) Report(context.Context) (map[string]any, error) {
	st := t.Stats()
	r := map[string]any{
		"relay_attached": st.Attached,
		"relay_attaches": st.Attaches,
		"relay_sent":     st.DatagramsSent,
		"relay_received": st.DatagramsReceived,
		"relay_dropped":  st.Dropped,
	}
	if st.LastError != nil {
		r["relay_error"] = st.LastError.Error()
	}
	return r, nil
}

// Changed is closed at the next change of the attachment (attached,
// detached, closed). Take it before reading Stats or Report.
func (t *Transport) Changed() <-chan struct{} { return t.changes.Next() }

var (
	_ protocols.Transport = (*Transport)(nil)
	_ protocols.Instance  = (*Transport)(nil)
	_ protocols.Reporter  = (*Transport)(nil)
	_ protocols.Notifier  = (*Transport)(nil)
)
