package memlog

import (
	"context"
	"slices"
	"sync"

	"github.com/rime-dev/rime/protocols"
)

// Log is a protocols.Log in memory: one replica, every append
// committed at once. Like the Raft log, Compact drops the entries it
// covers, so a follower left behind gets ErrCompacted.
type Log struct {
	mu      sync.Mutex
	cond    *sync.Cond // broadcast on append, compaction and close
	snapSeq uint64     // entries 1..snapSeq are covered by snap
	snap    []byte
	entries [][]byte // entries snapSeq+1 .. snapSeq+len(entries)
	closed  bool
}

// New returns an empty log.
func New() *Log {
	l := &Log{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *Log) Provision(*protocols.Env) error { return nil }
func (l *Log) Validate() error                { return nil }
func (l *Log) Start(context.Context) error    { return nil }
func (l *Log) Ready(context.Context) error    { return nil }

func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.cond.Broadcast()
	return nil
}

func (l *Log) lastLocked() uint64 { return l.snapSeq + uint64(len(l.entries)) }

// waitLocked waits, with l.mu held, until done holds or ctx ends. A
// context cannot wake a sync.Cond by itself, so it broadcasts when done.
func (l *Log) waitLocked(ctx context.Context, done func() bool) error {
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

func (l *Log) Append(_ context.Context, data []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, protocols.ErrClosed
	}
	l.entries = append(l.entries, append([]byte(nil), data...))
	l.cond.Broadcast()
	return l.lastLocked(), nil
}

func (l *Log) ReadIndex(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, protocols.ErrClosed
	}
	return l.lastLocked(), nil
}

func (l *Log) Follow(from uint64) protocols.Follower { return &follower{l: l, next: from} }

func (l *Log) Compact(_ context.Context, upTo uint64, state []byte) error {
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

func (l *Log) Snapshot() (uint64, []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snapSeq, l.snap
}

// WaitSnapshot waits until the log is compacted up to upTo at least.
func (l *Log) WaitSnapshot(ctx context.Context, upTo uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waitLocked(ctx, func() bool { return l.snapSeq >= upTo })
}

type follower struct {
	l    *Log
	next uint64
}

func (f *follower) Next(ctx context.Context) (protocols.Entry, error) {
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

func (f *follower) Close() {}

var (
	_ protocols.Log      = (*Log)(nil)
	_ protocols.Instance = (*Log)(nil)
)
