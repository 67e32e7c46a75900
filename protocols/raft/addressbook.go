package raft

import (
	"context"
	"sync"

	"github.com/rime-dev/rime/protocols"
)

// addressBook resolves Raft targets to network addresses. Replicas are
// registered with dragonboat under their node IDs, not their addresses,
// for two reasons: a node that comes back with a new disk is a new node
// at the old address, and dragonboat refuses to add a replica at an
// address the shard still lists for the node it replaces; and a mobile
// node's address changes while its identity does not. The membership
// layer knows where each node is now, so the book follows its events.
type addressBook struct {
	members protocols.Membership

	mu    sync.RWMutex
	addrs map[string]string
}

func newAddressBook(m protocols.Membership) *addressBook {
	b := &addressBook{members: m, addrs: map[string]string{}}
	b.refresh()
	return b
}

// follow keeps the book current until ctx ends.
func (b *addressBook) follow(ctx context.Context) {
	events, cancel := b.members.Subscribe()
	defer cancel()
	// Members that changed between newAddressBook and Subscribe are
	// caught by this second look.
	b.refresh()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			b.set(ev.Member)
		}
	}
}

func (b *addressBook) refresh() {
	for _, m := range b.members.Members() {
		b.set(m)
	}
}

func (b *addressBook) set(m protocols.Member) {
	if m.Addr == "" {
		return
	}
	b.mu.Lock()
	b.addrs[m.ID] = m.Addr
	b.mu.Unlock()
}

// lookup returns the address of node id; a node the view has never seen
// has none, and messages to it are dropped as if lost, which Raft
// tolerates.
func (b *addressBook) lookup(id string) (string, bool) {
	b.mu.RLock()
	a, ok := b.addrs[id]
	b.mu.RUnlock()
	if !ok {
		b.refresh()
		b.mu.RLock()
		a, ok = b.addrs[id]
		b.mu.RUnlock()
	}
	return a, ok
}
