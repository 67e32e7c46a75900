package node_test

import (
	"testing"
	"time"
)

func TestLeaderCrashAndRestartWithDiskKept(t *testing.T) {
	c := newCluster(t, 3)
	ctx, rec, finish := c.run(60 * time.Second)
	defer finish()
	progress(t, ctx, rec, "before the crash")

	l := c.leader(ctx)
	c.Crash(l)
	progress(t, ctx, rec, "after the leader crashed")
	if nl := c.leader(ctx); nl == l {
		t.Fatalf("the crashed node %d still leads", l)
	}

	// Back with its disk: it rejoins and holds every acknowledged update.
	c.restart(ctx, l, true)
	progress(t, ctx, rec, "after the restart")
	finish()
	checkHistory(t, rec)
	c.holdsAll(ctx, rec, l, rec.Acked())
}

func TestIsolatedLeaderAndMinorityRefuseWrites(t *testing.T) {
	c := newCluster(t, 3)
	ctx, rec, finish := c.run(60 * time.Second)
	defer finish()
	progress(t, ctx, rec, "before the partition")

	l := c.leader(ctx)
	c.Partition([][]int{{l}})
	// The majority side elects a leader of its own and goes on.
	progress(t, ctx, rec, "majority side during the partition")

	// The minority side refuses: a session there cannot get an update
	// accepted, and is disconnected rather than silently dropping it.
	s, err := c.Channel(l, class).Connect(ctx)
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

	c.Heal()
	progress(t, ctx, rec, "after healing")
	finish()
	checkHistory(t, rec)
	for _, u := range rec.Acked() {
		if u == "minority write" {
			t.Fatal("the minority write was acknowledged")
		}
	}
}

func TestFaultyNetworkChangesNothing(t *testing.T) {
	c := newCluster(t, 3)
	c.SetDuplicate(0.2)
	c.SetReorder(0.2)
	c.SetLoss(0.02)
	c.SetDelay(0, 2*time.Millisecond)
	ctx, rec, finish := c.run(60 * time.Second)
	defer finish()
	for range 5 {
		progress(t, ctx, rec, "under duplication, reordering and loss")
	}
	finish()
	checkHistory(t, rec)
	st := c.Network().Stats()
	if st.Duplicated == 0 || st.Reordered == 0 || st.Lost == 0 {
		t.Fatalf("faults were not injected: %+v", st)
	}
	t.Logf("network: %+v", st)
}

func TestDiskLostRejoinsThroughSnapshotAndLateJoiner(t *testing.T) {
	c := newCluster(t, 3)
	ctx, rec, finish := c.run(90 * time.Second)
	defer finish()
	// Enough updates for checkpoints (every 25) and Raft snapshots
	// (every 50 entries) to compact the log.
	for len(rec.Acked()) < 150 {
		progress(t, ctx, rec, "filling the log")
	}
	f := (c.leader(ctx) + 1) % 3
	c.Crash(f)
	c.restart(ctx, f, false) // a new disk, so a new identity
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
	progress(t, ctx, rec, "after the disk loss")
	finish()
	checkHistory(t, rec)
	c.holdsAll(ctx, rec, f, rec.Acked())

	// A late joiner starts from a checkpoint, then gets the contiguous
	// tail.
	c.lateJoiner(ctx, rec, f)
}
