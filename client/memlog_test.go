package client_test

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/checkpointedchannel"
)

// memLog is a protocols.Log in memory: one replica, every append
// committed at once. Like the Raft log, Compact drops the entries it
// covers, so a follower left behind gets ErrCompacted.
type memLog struct {
	mu      sync.Mutex
	cond    *sync.Cond // broadcast on append, compaction and close
	snapSeq uint64     // entries 1..snapSeq are covered by snap
	snap    []byte
	entries [][]byte // entries snapSeq+1 .. snapSeq+len(entries)
	closed  bool
}

func newMemLog() *memLog {
	l := &memLog{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *memLog) Provision(*protocols.Env) error { return nil }
func (l *memLog) Validate() error                { return nil }
func (l *memLog) Start(context.Context) error    { return nil }
func (l *memLog) Ready(context.Context) error    { return nil }

func (l *memLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.cond.Broadcast()
	return nil
}

func (l *memLog) lastLocked() uint64 { return l.snapSeq + uint64(len(l.entries)) }

// waitLocked waits, with l.mu held, until done holds or ctx ends. A
// context cannot wake a sync.Cond by itself, so it broadcasts when done.
func (l *memLog) waitLocked(ctx context.Context, done func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	for !done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.cond.Wait()
	}
	return nil
}

func (l *memLog) Append(_ context.Context, data []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, protocols.ErrClosed
	}
	l.entries = append(l.entries, append([]byte(nil), data...))
	l.cond.Broadcast()
	return l.lastLocked(), nil
}

func (l *memLog) ReadIndex(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, protocols.ErrClosed
	}
	return l.lastLocked(), nil
}

func (l *memLog) Follow(from uint64) protocols.Follower { return &memFollower{l: l, next: from} }

func (l *memLog) Compact(_ context.Context, upTo uint64, state []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return protocols.ErrClosed
	}
	if upTo <= l.snapSeq || upTo > l.lastLocked() {
		return nil // behind the snapshot, or ahead of the log: ignored
	}
	l.entries = slices.Clone(l.entries[upTo-l.snapSeq:])
	l.snapSeq, l.snap = upTo, append([]byte(nil), state...)
	l.cond.Broadcast()
	return nil
}

func (l *memLog) Snapshot() (uint64, []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snapSeq, l.snap
}

// waitSnapshot waits until the log is compacted up to upTo at least.
func (l *memLog) waitSnapshot(ctx context.Context, upTo uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waitLocked(ctx, func() bool { return l.snapSeq >= upTo })
}

type memFollower struct {
	l    *memLog
	next uint64
}

func (f *memFollower) Next(ctx context.Context) (protocols.Entry, error) {
	l := f.l
	l.mu.Lock()
	defer l.mu.Unlock()
	var e protocols.Entry
	var err error
	werr := l.waitLocked(ctx, func() bool {
		switch {
		case l.closed:
			err = protocols.ErrClosed
		case f.next <= l.snapSeq:
			err = protocols.ErrCompacted
		case f.next <= l.lastLocked():
			e = protocols.Entry{Seq: f.next, Data: l.entries[f.next-l.snapSeq-1]}
		default:
			return false
		}
		return true
	})
	if werr != nil {
		return protocols.Entry{}, werr
	}
	if err != nil {
		return protocols.Entry{}, err
	}
	f.next++
	return e, nil
}

func (f *memFollower) Close() {}

var (
	_ protocols.Log      = (*memLog)(nil)
	_ protocols.Instance = (*memLog)(nil)
)

// testNode is a node's classes as the client sees them: each class a real
// checkpointed channel over its own memLog.
type testNode struct {
	logs  map[string]*memLog
	chans map[string]protocols.Channel
}

// newTestNode provisions and starts one checkpointed channel per class.
func newTestNode(t testing.TB, cfg checkpointedchannel.Config, classes ...string) *testNode {
	t.Helper()
	n, err := buildNode(cfg, classes...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.close)
	return n
}

func buildNode(cfg checkpointedchannel.Config, classes ...string) (*testNode, error) {
	n := &testNode{logs: map[string]*memLog{}, chans: map[string]protocols.Channel{}}
	for _, class := range classes {
		log := newMemLog()
		inst := checkpointedchannel.NewModule(cfg).New()
		env := &protocols.Env{App: "test", Group: "test", Class: class, Below: []protocols.Instance{log}, Logger: slog.New(slog.DiscardHandler)}
		if err := inst.Provision(env); err != nil {
			return nil, err
		}
		if err := inst.Validate(); err != nil {
			return nil, err
		}
		if err := inst.Start(context.Background()); err != nil {
			return nil, err
		}
		n.logs[class] = log
		n.chans[class] = inst.(protocols.Channel)
	}
	return n, nil
}

func (n *testNode) close() {
	for class, ch := range n.chans {
		ch.Close()
		n.logs[class].Close()
	}
}

// lookup is what the node agent gives package client.
func (n *testNode) lookup(class string) (protocols.Channel, error) {
	if ch, ok := n.chans[class]; ok {
		return ch, nil
	}
	known := make([]string, 0, len(n.chans))
	for c := range n.chans {
		known = append(known, c)
	}
	sort.Strings(known)
	return nil, &client.UnknownClassError{Class: class, Known: known}
}

// testConfig is the default channel config with checkpoints every
// checkpointEvery updates.
func testConfig(checkpointEvery uint64) checkpointedchannel.Config {
	cfg := checkpointedchannel.DefaultConfig()
	cfg.CheckpointEvery = checkpointEvery
	return cfg
}
