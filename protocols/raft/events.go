package raft

import (
	"sync"

	"github.com/lni/dragonboat/v4/raftio"
)

// changes is a broadcast of "something about the shard changed": a new
// leader or term, a membership change, a replica ready, a snapshot
// installed, a role recorded. Waiters take the channel, check what they
// need, and wait for it to close before checking again, so nobody polls.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

func (c *changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

func (c *changes) notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

// listener turns dragonboat's event callbacks into changes. dragonboat
// calls them from its own goroutines and asks that they return quickly,
// which notify does.
type listener struct{ c *changes }

func (l listener) LeaderUpdated(raftio.LeaderInfo)             { l.c.notify() }
func (l listener) NodeHostShuttingDown()                       {}
func (l listener) NodeUnloaded(raftio.NodeInfo)                { l.c.notify() }
func (l listener) NodeDeleted(raftio.NodeInfo)                 {}
func (l listener) NodeReady(raftio.NodeInfo)                   { l.c.notify() }
func (l listener) MembershipChanged(raftio.NodeInfo)           { l.c.notify() }
func (l listener) ConnectionEstablished(raftio.ConnectionInfo) {}
func (l listener) ConnectionFailed(raftio.ConnectionInfo)      {}
func (l listener) SendSnapshotStarted(raftio.SnapshotInfo)     {}
func (l listener) SendSnapshotCompleted(raftio.SnapshotInfo)   {}
func (l listener) SendSnapshotAborted(raftio.SnapshotInfo)     {}
func (l listener) SnapshotReceived(raftio.SnapshotInfo)        {}
func (l listener) SnapshotRecovered(raftio.SnapshotInfo)       { l.c.notify() }
func (l listener) SnapshotCreated(raftio.SnapshotInfo)         {}
func (l listener) SnapshotCompacted(raftio.SnapshotInfo)       {}
func (l listener) LogCompacted(raftio.EntryInfo)               {}
func (l listener) LogDBCompacted(raftio.EntryInfo)             {}

var (
	_ raftio.IRaftEventListener   = listener{}
	_ raftio.ISystemEventListener = listener{}
)
