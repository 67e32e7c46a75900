package checkpointedchannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/memlog"
)

// newTestChannel is a channel over an in-memory log.
func newTestChannel(t *testing.T, cfg Config) (*Channel, *memlog.Log) {
	t.Helper()
	log := memlog.New()
	c := &Channel{cfg: cfg}
	env := &protocols.Env{App: "test", Group: "test", Class: "c", Below: []protocols.Instance{log}, Logger: slog.New(slog.DiscardHandler)}
	if err := c.Provision(env); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); log.Close() })
	return c, log
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readUpdates reads a session's events up to update last, answering
// nothing, and returns the updates' Seqs and payloads.
func readUpdates(ctx context.Context, s protocols.Session, last uint64) ([]uint64, []string, error) {
	var seqs []uint64
	var data []string
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				return seqs, data, fmt.Errorf("session ended after %d updates: %w", len(seqs), s.Err())
			}
			if ev.Kind != protocols.Update {
				continue
			}
			seqs = append(seqs, ev.Seq)
			data = append(data, string(ev.Data))
			if ev.Seq == last {
				return seqs, data, nil
			}
		case <-ctx.Done():
			return seqs, data, fmt.Errorf("after %d updates: %w", len(seqs), ctx.Err())
		}
	}
}

func wantContiguous(t *testing.T, who string, seqs []uint64, data []string, from, to uint64) {
	t.Helper()
	if len(seqs) != int(to-from+1) {
		t.Fatalf("%s: %d updates, want %d (%d..%d)", who, len(seqs), to-from+1, from, to)
	}
	for i, seq := range seqs {
		if seq != from+uint64(i) || data[i] != fmt.Sprint("u", seq) {
			t.Fatalf("%s: update %d is Seq %d %q, want Seq %d %q", who, i, seq, data[i], from+uint64(i), fmt.Sprint("u", from+uint64(i)))
		}
	}
}

// initialize reads a session's Initialize event.
func initialize(t *testing.T, ctx context.Context, s protocols.Session) uint64 {
	t.Helper()
	select {
	case ev := <-s.Events():
		if ev.Kind != protocols.Initialize {
			t.Fatalf("first event is %v, want initialize", ev.Kind)
		}
		return ev.Seq
	case <-ctx.Done():
		t.Fatal("no initialize event")
	}
	return 0
}

// Many sessions reading while several writers append: every session sees
// every update, once, in the log's order.
func TestSessionsSeeEveryUpdateInOrder(t *testing.T) {
	ctx := testContext(t)
	c, log := newTestChannel(t, DefaultConfig())
	const sessions, writers, each = 8, 4, 200
	var ss []protocols.Session
	for range sessions {
		s, err := c.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		initialize(t, ctx, s)
		ss = append(ss, s)
	}
	// The log numbers the updates; writing "u<seq>" needs the seq before
	// the append, so writers take turns under a lock.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				mu.Lock()
				seq, _ := log.ReadIndex(ctx)
				_, err := log.Append(ctx, []byte(fmt.Sprint("u", seq+1)))
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	errs := make(chan error, sessions)
	for i, s := range ss {
		go func() {
			seqs, data, err := readUpdates(ctx, s, writers*each)
			if err == nil && (len(seqs) != writers*each || seqs[0] != 1 || !slices.IsSorted(seqs) || data[len(data)-1] != fmt.Sprint("u", writers*each)) {
				err = fmt.Errorf("session %d: %d updates from %v", i, len(seqs), seqs[:min(3, len(seqs))])
			}
			errs <- err
		}()
	}
	wg.Wait()
	for range sessions {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A session that stops reading falls off the feed and the others carry
// on; when it reads again it gets every update it missed, in order, and
// rejoins the feed.
func TestSlowSessionFallsBehindWithoutHoldingOthersBack(t *testing.T) {
	ctx := testContext(t)
	cfg := DefaultConfig()
	cfg.EventBuffer = 4
	c, log := newTestChannel(t, cfg)
	slow, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, ctx, slow)
	initialize(t, ctx, fast)
	const n = 100
	for i := 1; i <= n; i++ {
		if _, err := log.Append(ctx, []byte(fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The fast session reads everything while the slow one reads
	// nothing: with a queue of 4, the feed must have let the slow one go.
	seqs, data, err := readUpdates(ctx, fast, n)
	if err != nil {
		t.Fatal(err)
	}
	wantContiguous(t, "fast session", seqs, data, 1, n)
	seqs, data, err = readUpdates(ctx, slow, n)
	if err != nil {
		t.Fatal(err)
	}
	wantContiguous(t, "slow session", seqs, data, 1, n)

	// Level again, it takes the next update from the feed: after reading
	// it, the feed holds both sessions.
	if _, err := log.Append(ctx, []byte(fmt.Sprint("u", n+1))); err != nil {
		t.Fatal(err)
	}
	for _, s := range []protocols.Session{slow, fast} {
		seqs, data, err := readUpdates(ctx, s, n+1)
		if err != nil {
			t.Fatal(err)
		}
		wantContiguous(t, "after catching up", seqs, data, n+1, n+1)
	}
	c.feed.mu.Lock()
	fed := len(c.feed.subs)
	c.feed.mu.Unlock()
	if fed != 2 {
		t.Fatalf("the feed holds %d sessions after the slow one caught up, want 2", fed)
	}
}

// A session that connects late starts from the checkpoint, reads the
// tail by itself and joins the feed.
func TestLateSessionStartsFromCheckpoint(t *testing.T) {
	ctx := testContext(t)
	c, log := newTestChannel(t, DefaultConfig())
	first, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, ctx, first)
	for i := 1; i <= 10; i++ {
		if _, err := log.Append(ctx, []byte(fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A checkpoint comes from a component that has read the updates it
	// covers, so the feed has handed them out before the compaction.
	seqs, data, err := readUpdates(ctx, first, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantContiguous(t, "first session", seqs, data, 1, 10)
	if err := log.Compact(ctx, 6, []byte("state@6")); err != nil {
		t.Fatal(err)
	}
	late, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if at := initialize(t, ctx, late); at != 6 {
		t.Fatalf("late session initialized at %d, want the checkpoint at 6", at)
	}
	if seqs, data, err = readUpdates(ctx, late, 10); err != nil {
		t.Fatal(err)
	}
	wantContiguous(t, "late session", seqs, data, 7, 10)
}

// Sync returns once the session has been sent every update committed
// before it was called.
func TestSyncWaitsForDelivery(t *testing.T) {
	ctx := testContext(t)
	cfg := DefaultConfig()
	cfg.EventBuffer = 2
	c, log := newTestChannel(t, cfg)
	s, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		if _, err := log.Append(ctx, []byte(fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	// With a queue of 2 the session cannot have been sent update 20 yet;
	// Sync must wait until the reader below has drained the queue.
	synced := make(chan uint64, 1)
	go func() {
		seq, err := s.Sync(ctx)
		if err != nil {
			t.Error(err)
		}
		synced <- seq
	}()
	initialize(t, ctx, s)
	seqs, data, err := readUpdates(ctx, s, 20)
	if err != nil {
		t.Fatal(err)
	}
	wantContiguous(t, "session", seqs, data, 1, 20)
	select {
	case seq := <-synced:
		if seq != 20 {
			t.Fatalf("Sync returned %d, want 20", seq)
		}
	case <-ctx.Done():
		t.Fatal("Sync did not return after every update was read")
	}
}

// Compaction past a session that fell behind ends it with ErrCompacted
// (the component reconnects from the checkpoint) and no other session.
func TestCompactionPastASlowSessionEndsIt(t *testing.T) {
	ctx := testContext(t)
	cfg := DefaultConfig()
	cfg.EventBuffer = 2
	c, log := newTestChannel(t, cfg)
	slow, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, ctx, slow)
	for i := 1; i <= 10; i++ {
		if _, err := log.Append(ctx, []byte(fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Compact(ctx, 8, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = readUpdates(ctx, slow, 10)
	if !errors.Is(err, protocols.ErrCompacted) {
		t.Fatalf("slow session: %v, want it ended with ErrCompacted", err)
	}
	fresh, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if at := initialize(t, ctx, fresh); at != 8 {
		t.Fatalf("a new session initialized at %d, want 8", at)
	}
}
