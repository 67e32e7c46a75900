package swim

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rime-dev/rime/protocols"
)

// The view is kept from memberlist's callbacks; these drive them
// directly, in the orders gossip can deliver them.
func TestLeaveIntentDecidesLeftOrDead(t *testing.T) {
	s := New(fastConfig())
	s.id = "self"
	evs, cancel := s.Subscribe()
	defer cancel()
	ev, d := events{s}, delegate{s}
	node := func(id, session string) *memberlist.Node {
		m, err := encodeMeta(meta{Class: "phone", Session: session})
		if err != nil {
			t.Fatal(err)
		}
		return &memberlist.Node{Name: id, Addr: net.ParseIP("10.0.0.2"), Port: 7946, Meta: m}
	}
	member := func(id string, st protocols.MemberState) protocols.Member {
		return protocols.Member{ID: id, Addr: "10.0.0.2:7946", NodeClass: "phone", State: st}
	}

	// The intent arrives before the death: left at once.
	ev.NotifyJoin(node("a", "s1"))
	d.NotifyMsg(encodeIntent(intent{ID: "a", Session: "s1"}))
	if n := s.queue.NumQueued(); n != 1 {
		t.Errorf("a new intent is passed on: %d queued, want 1", n)
	}
	d.NotifyMsg(encodeIntent(intent{ID: "a", Session: "s1"}))
	if n := s.queue.NumQueued(); n != 1 {
		t.Errorf("a known intent is passed on again: %d queued, want 1", n)
	}
	ev.NotifyLeave(node("a", "s1"))

	// The death arrives first, the intent later by push/pull: dead, then
	// left.
	ev.NotifyJoin(node("b", "s1"))
	ev.NotifyLeave(node("b", "s1"))
	st, err := encodeState(state{Leaving: []intent{{ID: "b", Session: "s1"}}})
	if err != nil {
		t.Fatal(err)
	}
	d.MergeRemoteState(st, false)

	// The next run of a comes back; its crash is not covered by the
	// previous run's intent.
	ev.NotifyJoin(node("a", "s2"))
	ev.NotifyLeave(node("a", "s2"))
	// A repeated report changes nothing and tells no one.
	ev.NotifyLeave(node("a", "s2"))

	want := []protocols.Member{
		member("a", protocols.MemberAlive),
		member("a", protocols.MemberLeft),
		member("b", protocols.MemberAlive),
		member("b", protocols.MemberDead),
		member("b", protocols.MemberLeft),
		member("a", protocols.MemberAlive),
		member("a", protocols.MemberDead),
	}
	for i, w := range want {
		select {
		case e := <-evs:
			if e.Member != w {
				t.Errorf("event %d = %+v, want %+v", i, e.Member, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d missing", i)
		}
	}
	select {
	case e := <-evs:
		t.Errorf("unexpected event %+v", e.Member)
	default:
	}
	got := s.Members()
	if len(got) != 3 || got[0] != member("a", protocols.MemberDead) || got[1] != member("b", protocols.MemberLeft) || got[2].ID != "self" {
		t.Errorf("Members = %+v", got)
	}
}

func TestRetentionForgetsTheGone(t *testing.T) {
	cfg := fastConfig()
	cfg.Retention = time.Hour
	s := New(cfg)
	s.id = "self"
	m, _ := encodeMeta(meta{Class: "phone", Session: "s"})
	n := &memberlist.Node{Name: "a", Addr: net.ParseIP("10.0.0.2"), Port: 7946, Meta: m}
	events{s}.NotifyJoin(n)
	events{s}.NotifyLeave(n)
	if got := s.Members(); len(got) != 2 {
		t.Fatalf("a dead member was forgotten before its retention: %v", got)
	}
	// Past the retention, on the view's clock.
	later := time.Now().Add(2 * time.Hour)
	s.mu.Lock()
	s.now = func() time.Time { return later }
	s.mu.Unlock()
	if got := s.Members(); len(got) != 1 {
		t.Fatalf("a dead member outlived its retention: %v", got)
	}
}

// A subscriber that does not read holds back neither the view nor the
// other subscribers, and loses nothing.
func TestSlowSubscriberLosesNothing(t *testing.T) {
	s := New(fastConfig())
	slow, cancelSlow := s.Subscribe()
	defer cancelSlow()
	fast, cancelFast := s.Subscribe()
	defer cancelFast()
	const n = 10000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			m, _ := encodeMeta(meta{Class: "c", Session: "s"})
			events{s}.NotifyJoin(&memberlist.Node{Name: "m", Addr: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 1, Meta: m})
		}
	}()
	for i := range n {
		if _, ok := <-fast; !ok {
			t.Fatalf("fast subscriber closed after %d", i)
		}
	}
	<-done
	for i := range n {
		if _, ok := <-slow; !ok {
			t.Fatalf("slow subscriber closed after %d", i)
		}
	}
	cancelSlow()
	if _, ok := <-slow; ok {
		t.Error("event after cancel")
	}
}
