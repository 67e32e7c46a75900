package node_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

// progress waits until the history holds more acknowledged updates than
// before, proving the cluster still takes writes.
func progress(t *testing.T, ctx context.Context, h *history, what string) {
	t.Helper()
	before, _ := h.ackCount()
	for {
		n, next := h.ackCount()
		if n >= before+10 {
			return
		}
		select {
		case <-next:
		case <-ctx.Done():
			t.Fatalf("%s: no progress (%d acknowledged updates before)", what, before)
		}
	}
}

func TestLeaderCrashAndRestartWithDiskKept(t *testing.T) {
	c := newCluster(t, 3)
	ctx, h, finish := c.run(60 * time.Second)
	defer finish()
	progress(t, ctx, h, "before the crash")

	l := c.leader(ctx)
	c.crash(l)
	progress(t, ctx, h, "after the leader crashed")
	if nl := c.leader(ctx); nl == l {
		t.Fatalf("the crashed node %d still leads", l)
	}

	// Back with its disk: it rejoins and holds every acknowledged update.
	c.restart(l, true)
	progress(t, ctx, h, "after the restart")
	finish()
	h.check()
	c.holdsAll(ctx, l, h.ackedUpdates())
}

func TestIsolatedLeaderAndMinorityRefuseWrites(t *testing.T) {
	c := newCluster(t, 3)
	ctx, h, finish := c.run(60 * time.Second)
	defer finish()
	progress(t, ctx, h, "before the partition")

	l := c.leader(ctx)
	var rest []string
	var restIdx []int
	for i := range 3 {
		if i != l {
			rest, restIdx = append(rest, c.addr(i)), append(restIdx, i)
		}
	}
	c.net.Partition([]string{c.addr(l)}, rest)
	// The majority side elects a leader of its own and goes on.
	progress(t, ctx, h, "majority side during the partition")

	// The minority side refuses: a session there cannot get an update
	// accepted, and is disconnected rather than silently dropping it.
	s, err := c.channel(l).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Submit(ctx, []byte("minority write")); err != nil {
		t.Fatal(err)
	}
	// The session's events end when it is disconnected.
	for {
		select {
		case _, ok := <-s.Events():
			if ok {
				continue
			}
		case <-ctx.Done():
			t.Fatal("a write on the minority side was neither accepted nor refused")
		}
		break
	}
	t.Logf("minority session ended: %v", s.Err())

	c.net.Heal()
	progress(t, ctx, h, "after healing")
	finish()
	h.check()
	for _, u := range h.ackedUpdates() {
		if u == "minority write" {
			t.Fatal("the minority write was acknowledged")
		}
	}
	_ = restIdx
}

func TestFaultyNetworkChangesNothing(t *testing.T) {
	c := newCluster(t, 3)
	c.net.SetDuplicate(0.2)
	c.net.SetReorder(0.2)
	c.net.SetLoss(0.02)
	c.net.SetDelay(0, 2*time.Millisecond)
	ctx, h, finish := c.run(60 * time.Second)
	defer finish()
	for range 5 {
		progress(t, ctx, h, "under duplication, reordering and loss")
	}
	finish()
	h.check()
	st := c.net.Stats()
	if st.Duplicated == 0 || st.Reordered == 0 || st.Lost == 0 {
		t.Fatalf("faults were not injected: %+v", st)
	}
	t.Logf("network: %+v", st)
}

func TestDiskLostRejoinsThroughSnapshotAndLateJoiner(t *testing.T) {
	c := newCluster(t, 3)
	ctx, h, finish := c.run(90 * time.Second)
	defer finish()
	// Enough updates for checkpoints (every 25) and Raft snapshots
	// (every 50 entries) to compact the log.
	for len(h.ackedUpdates()) < 150 {
		progress(t, ctx, h, "filling the log")
	}
	f := (c.leader(ctx) + 1) % 3
	c.crash(f)
	c.restart(f, false) // a new disk, so a new identity
	// The new node is added, promoted in place of the lost one, and can
	// only catch up through a snapshot: the log it would replay is gone.
	for {
		changed := c.raftOf(f).Changed()
		st, err := c.raftOf(f).Status(ctx)
		if err == nil && st.Voters == 3 && c.raftOf(f).Role() == "voter" {
			if st.Recovered == 0 {
				t.Fatalf("the node with a new disk caught up without a snapshot: %+v", st)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the node with a new disk never became a voter: %+v %v", st, err)
		}
		waitAny(ctx, []<-chan struct{}{changed})
	}
	progress(t, ctx, h, "after the disk loss")
	finish()
	h.check()
	c.holdsAll(ctx, f, h.ackedUpdates())

	// A late joiner starts from a checkpoint, then gets the contiguous
	// tail: checked by lateJoiner.
	c.lateJoiner(ctx, f, h)
}

// run starts two clients on each of the three nodes, recording into a
// new history, and returns the test's context and finish, which stops
// the clients and waits for them (and may be called more than once).
func (c *cluster) run(timeout time.Duration) (context.Context, *history, func()) {
	h := newHistory(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	// The deadline outlives finish: checks after the workload use it.
	c.t.Cleanup(cancel)
	wctx, stop := context.WithCancel(ctx)
	wg := c.workload(wctx, h, 2, 0, 1, 2)
	var once sync.Once
	return ctx, h, func() {
		once.Do(func() {
			stop()
			wg.Wait()
		})
	}
}
