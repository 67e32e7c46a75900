package raft

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/durablestorage"
)

// staticMembers is a Membership whose view the test sets: it isolates
// Raft's reconciliation from failure detection (package node's tests run
// the real SWIM underneath).
type staticMembers struct {
	mu   sync.Mutex
	self protocols.Member
	view *[]protocols.Member
	vmu  *sync.Mutex
}

func (s *staticMembers) Start(context.Context) error { return nil }
func (s *staticMembers) Close() error                { return nil }
func (s *staticMembers) Provision(*protocols.Env) error {
	return nil
}
func (s *staticMembers) Validate() error        { return nil }
func (s *staticMembers) Self() protocols.Member { return s.self }
func (s *staticMembers) Members() []protocols.Member {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return append([]protocols.Member(nil), (*s.view)...)
}
func (s *staticMembers) Subscribe() (<-chan protocols.MemberEvent, func()) {
	return make(chan protocols.MemberEvent), func() {}
}

type transportOf struct{ ep network.Endpoint }

func (t transportOf) Start(context.Context) error    { return nil }
func (t transportOf) Close() error                   { return nil }
func (t transportOf) Provision(*protocols.Env) error { return nil }
func (t transportOf) Validate() error                { return nil }
func (t transportOf) Endpoint() network.Endpoint     { return t.ep }

type cluster struct {
	t    *testing.T
	net  *memnet.Network
	dir  string
	mu   sync.Mutex
	view []protocols.Member
	logs map[string]*Raft
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, net: memnet.New(1), dir: t.TempDir(), logs: map[string]*Raft{}}
}

func (c *cluster) start(id string, bootstrap bool) *Raft {
	c.t.Helper()
	addr := fmt.Sprintf("10.0.0.%s:7000", id[1:])
	ep, err := c.net.Listen(addr)
	if err != nil {
		c.t.Fatal(err)
	}
	self := protocols.Member{ID: id, Addr: addr, NodeClass: "server", State: protocols.MemberAlive}
	c.mu.Lock()
	found := false
	for i := range c.view {
		if c.view[i].ID == id {
			c.view[i] = self
			found = true
		}
	}
	if !found {
		c.view = append(c.view, self)
	}
	sort.Slice(c.view, func(i, j int) bool { return c.view[i].ID < c.view[j].ID })
	c.mu.Unlock()
	env := &protocols.Env{
		Node: protocols.Node{ID: id, NodeClass: "server", Bootstrap: bootstrap},
		App:  "app", Class: "doc", Params: map[string]any{"replicas": float64(3)},
		Hosts: []string{"server"}, DataDir: filepath.Join(c.dir, id),
	}
	st := &durablestorage.Store{}
	st.Provision(env)
	st.Start(context.Background())
	env.Below = []protocols.Instance{transportOf{ep}, &staticMembers{self: self, view: &c.view, vmu: &c.mu}, st}
	r := &Raft{cfg: DefaultConfig()}
	if err := r.Provision(env); err != nil {
		c.t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		c.t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	c.logs[id] = r
	c.t.Cleanup(func() { r.Close(); ep.Close() })
	return r
}

func (c *cluster) crash(id string) {
	c.net.Crash(fmt.Sprintf("10.0.0.%s:7000", id[1:]))
	c.logs[id].Close()
	c.mu.Lock()
	for i := range c.view {
		if c.view[i].ID == id {
			c.view[i].State = protocols.MemberDead
		}
	}
	c.mu.Unlock()
}

func TestFormAppendFollowAndFailover(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.start("n1", true)
	c.start("n2", false)
	c.start("n3", false)
	c.start("n4", false)
	for _, r := range c.logs {
		if err := r.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 20; i++ {
		seq, err := c.logs["n2"].Append(ctx, []byte(fmt.Sprint(i)))
		if err != nil || seq != uint64(i) {
			t.Fatalf("append %d: seq %d, %v", i, seq, err)
		}
	}
	// Every replica, voting or not, applies the same entries in order.
	for id, r := range c.logs {
		f := r.Follow(1)
		for i := 1; i <= 20; i++ {
			e, err := f.Next(ctx)
			if err != nil || string(e.Data) != fmt.Sprint(i) || e.Seq != uint64(i) {
				t.Fatalf("%s entry %d: %+v %v", id, i, e, err)
			}
		}
	}
	// Crash the leader: a new one is elected, the spare is promoted, and
	// appends go on.
	st, _ := c.logs["n1"].Status(ctx)
	var leader string
	for id, r := range c.logs {
		if ReplicaID(id) == st.LeaderID {
			leader = id
		}
		_ = r
	}
	c.crash(leader)
	var other *Raft
	for id, r := range c.logs {
		if id != leader {
			other = r
		}
	}
	// A proposal in flight to the dead leader times out (its outcome is
	// unknown); the client tries again with a short deadline.
	for {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		seq, err := other.Append(actx, []byte("after"))
		acancel()
		if err == nil {
			if seq < 21 {
				t.Fatalf("append after leader crash got seq %d", seq)
			}
			break
		}
		if ctx.Err() != nil {
			st, _ := other.Status(context.Background())
			t.Fatalf("append after leader crash: %v (status %+v)", err, st)
		}
	}
	for {
		st, err := other.Status(ctx)
		if err == nil && st.Voters == 3 && st.NonVoting == 0 && st.LeaderID != ReplicaID(leader) {
			break
		}
		if !sleep(ctx, 20*time.Millisecond) {
			t.Fatalf("replica count not restored: %+v %v", st, err)
		}
	}
}
