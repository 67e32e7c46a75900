package e2eencryption

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in its spec.
const Name = "e2e-encryption"

// NewModule returns the module.
func NewModule() protocols.Module {
	return protocols.Module{Name: Name, Provides: []string{"encryption"},
		New: func() protocols.Instance { return &Layer{} }}
}

func init() { protocols.Default.MustRegister(NewModule()) }

// Layer is one node's e2e-encryption instance for one class.
type Layer struct {
	env     *protocols.Env
	ring    *keyring
	claimed atomic.Bool
}

// Provision takes the node's key source (nil on a non-member).
func (l *Layer) Provision(env *protocols.Env) error {
	l.env = env
	l.ring = newKeyring(env.Keys, env.App, env.Group, env.Class)
	return nil
}

// Validate has nothing to check: the layer has no parameters.
func (l *Layer) Validate() error { return nil }

// Claim is called at Provision by a layer above that seals the class's
// data with this one (crdt-replication does).
func (l *Layer) Claim() { l.claimed.Store(true) }

// Start refuses to run under layers that would not use it: a
// confidential class whose data layers do not seal (a consensus stack:
// not implemented yet) must not run as if it were encrypted. Every layer
// is provisioned before any starts, so a claim has been made by now.
func (l *Layer) Start(context.Context) error {
	if !l.claimed.Load() {
		return fmt.Errorf("%s: class %s: no layer above seals the class's data with it (only crdt-replication does yet); refusing to run the class in plaintext", Name, l.env.Class)
	}
	return nil
}

// Close has nothing to release.
func (l *Layer) Close() error { return nil }

// Seal seals plaintext under the current epoch's key.
func (l *Layer) Seal(ctx context.Context, plaintext []byte) ([]byte, error) {
	return l.ring.seal(ctx, plaintext)
}

// Open checks and decrypts what Seal made, with its epoch's key.
func (l *Layer) Open(ctx context.Context, sealed []byte) ([]byte, error) {
	return l.ring.open(ctx, sealed)
}

// CanOpen reports whether this node is given the group's keys.
func (l *Layer) CanOpen() bool { return l.env.Keys != nil }

// Ready waits until a current key is at hand.
func (l *Layer) Ready(ctx context.Context) error {
	if l.env.Keys == nil {
		return fmt.Errorf("%s: node %s, class %s: %w", Name, l.env.Node.ID, l.env.Class, protocols.ErrNoKey)
	}
	if _, _, err := l.env.Keys.Current(ctx); err != nil {
		return fmt.Errorf("%s: class %s: %w", Name, l.env.Class, err)
	}
	return nil
}

// Changed is closed at the key source's next change; nil (never) on a
// node given no keys.
func (l *Layer) Changed() <-chan struct{} {
	if l.env.Keys == nil {
		return nil
	}
	return l.env.Keys.Changed()
}

// Report says whether this node reads the class and under which epoch it
// seals.
func (l *Layer) Report(ctx context.Context) (map[string]any, error) {
	out := map[string]any{"e2e_member": l.CanOpen()}
	if l.env.Keys != nil {
		c, cancel := context.WithCancel(ctx)
		cancel() // the current key if held, without waiting for one
		if e, _, err := l.env.Keys.Current(c); err == nil {
			out["e2e_epoch"] = e
		}
	}
	return out, nil
}

var (
	_ protocols.Instance = (*Layer)(nil)
	_ protocols.Sealer   = (*Layer)(nil)
	_ protocols.Reporter = (*Layer)(nil)
)
