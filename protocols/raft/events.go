package raft

import (
	"sync"

	"github.com/lni/dragonboat/v4/raftio"
)

// Changes is a broadcast of "something about the shard changed": a new
// leader or term, a membership change, a replica ready, a snapshot
// installed, a role recorded. Waiters take the channel, check what they
// need, and wait for it to close before checking again, so nobody polls.
// The hub's replicas use it too.
type Changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewChanges returns a broadcast with no change yet.
func NewChanges() *Changes { return &Changes{ch: make(chan struct{})} }

// Next is a channel closed at the next change.
func (c *Changes) Next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// Notify announces a change.
func (c *Changes) Notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

// Listener turns dragonboat's event callbacks into changes: give it as a
// NodeHost's RaftEventListener and SystemEventListener. dragonboat
// calls them from its own goroutines and asks that they return quickly,
// which notify does.
type Listener struct{ C *Changes }

func (l Listener) LeaderUpdated(raftio.LeaderInfo)             { l.C.Notify() }
func (l Listener) NodeHostShuttingDown()                       {}
func (l Listener) NodeUnloaded(raftio.NodeInfo)                { l.C.Notify() }
func (l Listener) NodeDeleted(raftio.NodeInfo)                 {}
func (l Listener) NodeReady(raftio.NodeInfo)                   { l.C.Notify() }
func (l Listener) MembershipChanged(raftio.NodeInfo)           { l.C.Notify() }
func (l Listener) ConnectionEstablished(raftio.ConnectionInfo) {}
func (l Listener) ConnectionFailed(raftio.ConnectionInfo)      {}
func (l Listener) SendSnapshotStarted(raftio.SnapshotInfo)     {}
func (l Listener) SendSnapshotCompleted(raftio.SnapshotInfo)   {}
func (l Listener) SendSnapshotAborted(raftio.SnapshotInfo)     {}
func (l Listener) SnapshotReceived(raftio.SnapshotInfo)        {}
func (l Listener) SnapshotRecovered(raftio.SnapshotInfo)       { l.C.Notify() }
func (l Listener) SnapshotCreated(raftio.SnapshotInfo)         {}
func (l Listener) SnapshotCompacted(raftio.SnapshotInfo)       {}
func (l Listener) LogCompacted(raftio.EntryInfo)               {}
func (l Listener) LogDBCompacted(raftio.EntryInfo)             {}

var (
	_ raftio.IRaftEventListener   = Listener{}
	_ raftio.ISystemEventListener = Listener{}
)
