package bench

// BenchmarkBroadcast50 measures, in one run, how long a broadcast takes to
// be delivered on all 50 nodes of an in-process group, for two systems
// side by side:
//
//   - raw memberlist: 50 memberlist v0.7.0 instances with the LAN profile
//     on loopback UDP, each with a TransmitLimitedQueue that every
//     receiver re-queues a message on when it first gets it (without
//     re-queueing only a handful of members ever get it; LIBRARIES.md);
//   - rime: 50 epidemic-broadcast nodes (DefaultConfig, fanout 3 as the
//     planner chooses it) over swim membership (memberlist's LAN profile),
//     all on memnet.
//
// rime runs on memnet rather than tlsnet: memnet is the in-process network
// every rime cluster test uses, and 50 tlsnet nodes would add 50x49 TLS
// handshakes to the setup without changing what is measured, which is the
// dissemination schedule (gossip rounds, digest intervals), not socket
// costs. To not flatter rime, memnet delays each datagram by 100-200 µs,
// more than loopback UDP's few tens of µs.
//
// For each of several broadcasts from different senders the time until
// each node delivers it is taken (the sender counts at 0); the median
// node's and the last node's times are averaged over the broadcasts and
// reported with b.ReportMetric, with the ratios rime/raw. Target: ratio
// of the last node at most 1.3. Run with
//
//	go test ./bench/ -run '^$' -bench Broadcast50 -benchtime 1x

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/epidemicbroadcast"
	"github.com/rime-dev/rime/protocols/swim"
)

const (
	bcastNodes  = 50
	bcastRounds = 6
	bcastWait   = 15 * time.Second // a node not reached by then counts as missed
	targetBcast = 1.3
)

// arrival is one node's delivery of broadcast round.
type arrival struct {
	node, round int
	at          time.Time
}

// roundTimes waits for the arrivals of round (the sender's included) and
// returns each node's delay after start, sorted, and how many nodes never
// delivered within bcastWait.
func roundTimes(arrivals <-chan arrival, round int, start time.Time) ([]time.Duration, int) {
	seen := map[int]bool{}
	var ds []time.Duration
	t := time.NewTimer(bcastWait)
	defer t.Stop()
	for len(seen) < bcastNodes {
		select {
		case a := <-arrivals:
			if a.round != round || seen[a.node] {
				continue
			}
			seen[a.node] = true
			ds = append(ds, a.at.Sub(start))
		case <-t.C:
			missed := bcastNodes - len(seen)
			for range missed {
				ds = append(ds, bcastWait)
			}
			slices.Sort(ds)
			return ds, missed
		}
	}
	slices.Sort(ds)
	return ds, 0
}

type dissemination struct {
	median, last time.Duration // averaged over rounds
	missed       int
}

func summarize(rounds [][]time.Duration, missed int) dissemination {
	var d dissemination
	for _, ds := range rounds {
		d.median += ds[len(ds)/2]
		d.last += ds[len(ds)-1]
	}
	d.median /= time.Duration(len(rounds))
	d.last /= time.Duration(len(rounds))
	d.missed = missed
	return d
}

func BenchmarkBroadcast50(b *testing.B) {
	raw := startRawMemberlist(b)
	rime := startRimeBroadcast(b)
	b.ResetTimer()
	var rawRounds, rimeRounds [][]time.Duration
	var rawMissed, rimeMissed int
	for i := 0; i < b.N; i++ {
		for r := range bcastRounds {
			sender := (r*17 + 3) % bcastNodes
			ds, m := raw.broadcast(len(rawRounds), sender)
			rawRounds, rawMissed = append(rawRounds, ds), rawMissed+m
			ds, m = rime.broadcast(b, len(rimeRounds), sender)
			rimeRounds, rimeMissed = append(rimeRounds, ds), rimeMissed+m
		}
	}
	b.StopTimer()
	rw, rm := summarize(rawRounds, rawMissed), summarize(rimeRounds, rimeMissed)
	b.ReportMetric(millis(rw.median), "raw-median-ms")
	b.ReportMetric(millis(rw.last), "raw-last-ms")
	b.ReportMetric(millis(rm.median), "rime-median-ms")
	b.ReportMetric(millis(rm.last), "rime-last-ms")
	b.ReportMetric(float64(rm.median)/float64(rw.median), "ratio-median")
	b.ReportMetric(float64(rm.last)/float64(rw.last), "ratio-last")
	b.ReportMetric(float64(rw.missed), "raw-missed")
	b.ReportMetric(float64(rm.missed), "rime-missed")
	verdict := "met"
	if float64(rm.last) > targetBcast*float64(rw.last) || rm.missed > 0 {
		verdict = "NOT met"
	}
	b.Logf("\n%d nodes, %d broadcasts             median node   last node   missed\n"+
		"raw memberlist (LAN, loopback UDP)   %8.1f ms  %8.1f ms   %d\n"+
		"rime epidemic-broadcast (memnet)     %8.1f ms  %8.1f ms   %d\n"+
		"ratio rime/raw                       %8.2fx    %8.2fx   target last <= %.1fx: %s",
		bcastNodes, len(rawRounds), millis(rw.median), millis(rw.last), rw.missed, millis(rm.median), millis(rm.last), rm.missed,
		float64(rm.median)/float64(rw.median), float64(rm.last)/float64(rw.last), targetBcast, verdict)
}

// ---- raw memberlist ----

type rawMemberlist struct {
	nodes    []*rawNode
	arrivals chan arrival
}

type rawNode struct {
	idx      int
	ml       *memberlist.Memberlist
	queue    *memberlist.TransmitLimitedQueue
	arrivals chan<- arrival
	joined   chan struct{} // closed when this node sees every member
	mu       sync.Mutex
	seen     map[string]bool
	members  int
}

// NotifyMsg is a user message arriving: the first time, record it and
// queue it again so that this node gossips it on too.
func (n *rawNode) NotifyMsg(b []byte) {
	at := time.Now()
	msg := string(b)
	n.mu.Lock()
	if n.seen[msg] {
		n.mu.Unlock()
		return
	}
	n.seen[msg] = true
	n.mu.Unlock()
	n.queue.QueueBroadcast(rawBroadcast(slices.Clone(b)))
	if round, err := strconv.Atoi(msg[len("bcast-"):]); err == nil {
		n.arrivals <- arrival{node: n.idx, round: round, at: at}
	}
}

func (n *rawNode) NodeMeta(int) []byte { return nil }
func (n *rawNode) GetBroadcasts(overhead, limit int) [][]byte {
	return n.queue.GetBroadcasts(overhead, limit)
}
func (n *rawNode) LocalState(bool) []byte        { return nil }
func (n *rawNode) MergeRemoteState([]byte, bool) {}

func (n *rawNode) NotifyJoin(*memberlist.Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members++
	if n.members == bcastNodes {
		close(n.joined)
	}
}
func (n *rawNode) NotifyLeave(*memberlist.Node)  {}
func (n *rawNode) NotifyUpdate(*memberlist.Node) {}

type rawBroadcast []byte

func (rawBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (m rawBroadcast) Message() []byte                     { return m }
func (rawBroadcast) Finished()                             {}

// startRawMemberlist starts 50 memberlists on loopback ports below the
// kernel's range for outgoing connections, all joining the first, and
// waits until each sees all 50.
func startRawMemberlist(b *testing.B) *rawMemberlist {
	b.Helper()
	t0 := time.Now()
	c := &rawMemberlist{arrivals: make(chan arrival, 4*bcastNodes)}
	base := 20000 + rand.IntN(10000-bcastNodes)
	for i := range bcastNodes {
		n := &rawNode{idx: i, arrivals: c.arrivals, joined: make(chan struct{}), seen: map[string]bool{}}
		n.queue = &memberlist.TransmitLimitedQueue{
			NumNodes:       func() int { return bcastNodes },
			RetransmitMult: memberlist.DefaultLANConfig().RetransmitMult,
		}
		cfg := memberlist.DefaultLANConfig()
		cfg.Name = fmt.Sprintf("raw%02d", i)
		cfg.BindAddr, cfg.AdvertiseAddr = "127.0.0.1", "127.0.0.1"
		cfg.BindPort, cfg.AdvertisePort = base+i, base+i
		cfg.Delegate, cfg.Events = n, n
		cfg.Logger = log.New(io.Discard, "", 0)
		ml, err := memberlist.Create(cfg)
		if err != nil {
			b.Fatalf("memberlist %d on port %d: %v", i, base+i, err)
		}
		n.ml = ml
		c.nodes = append(c.nodes, n)
		b.Cleanup(func() { ml.Shutdown() })
	}
	first := net.JoinHostPort("127.0.0.1", strconv.Itoa(base))
	for _, n := range c.nodes[1:] {
		if _, err := n.ml.Join([]string{first}); err != nil {
			b.Fatal(err)
		}
	}
	// memberlist gossips joins with a limited retransmit count, so a node
	// may learn the last few only at a push/pull (every 30 s). The
	// measurement goes ahead after 40 s and says how many views were
	// short; a member missing from a view still receives broadcasts.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	short := 0
	for _, n := range c.nodes {
		select {
		case <-n.joined:
		case <-ctx.Done():
			short++
		}
	}
	if short > 0 {
		b.Logf("raw memberlist: %d of %d nodes had not seen all members after 40 s", short, bcastNodes)
	}
	b.Logf("raw memberlist: %d nodes up in %v", bcastNodes, time.Since(t0).Round(time.Millisecond))
	return c
}

func (c *rawMemberlist) broadcast(round, sender int) ([]time.Duration, int) {
	msg := []byte(fmt.Sprintf("bcast-%d", round))
	n := c.nodes[sender]
	start := time.Now()
	n.mu.Lock()
	n.seen[string(msg)] = true
	n.mu.Unlock()
	n.queue.QueueBroadcast(rawBroadcast(msg))
	c.arrivals <- arrival{node: sender, round: round, at: start}
	return roundTimes(c.arrivals, round, start)
}

// ---- rime ----

type rimeCluster struct {
	nodes    []*epidemicbroadcast.Broadcaster
	arrivals chan arrival
}

type benchTransport struct{ ep network.Endpoint }

func (t *benchTransport) Provision(*protocols.Env) error { return nil }
func (t *benchTransport) Validate() error                { return nil }
func (t *benchTransport) Start(context.Context) error    { return nil }
func (t *benchTransport) Close() error                   { return nil }
func (t *benchTransport) Endpoint() network.Endpoint     { return t.ep }

// startRimeBroadcast starts 50 nodes of swim + epidemic-broadcast on
// memnet and waits until every swim view holds all 50 alive.
func startRimeBroadcast(b *testing.B) *rimeCluster {
	b.Helper()
	t0 := time.Now()
	nw := memnet.New(1)
	nw.SetDelay(100*time.Microsecond, 100*time.Microsecond)
	c := &rimeCluster{arrivals: make(chan arrival, 4*bcastNodes)}
	secret := make([]byte, 32)
	addr := func(i int) string { return fmt.Sprintf("10.1.%d.%d:7000", i/200, i%200+1) }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var swims []*swim.Swim
	var closers []func() error
	// Closed all at once: each swim says goodbye within its LeaveTimeout.
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, f := range closers {
			wg.Go(func() { f() })
		}
		wg.Wait()
	})
	for i := range bcastNodes {
		ep, err := nw.Listen(addr(i))
		if err != nil {
			b.Fatal(err)
		}
		tr := &benchTransport{ep}
		sw := swim.New(swim.DefaultConfig())
		var join []string
		if i > 0 {
			join = []string{addr(0)}
		}
		env := &protocols.Env{Node: protocols.Node{ID: fmt.Sprintf("rime%02d", i), NodeClass: "n", Join: join},
			App: "bench", Group: "bench", Class: "c", GroupSecret: secret, Below: []protocols.Instance{tr}}
		if err := sw.Provision(env); err != nil {
			b.Fatal(err)
		}
		if err := sw.Start(ctx); err != nil {
			b.Fatal(err)
		}
		bc := epidemicbroadcast.New(epidemicbroadcast.DefaultConfig())
		env.Below = []protocols.Instance{tr, sw}
		env.Params = map[string]any{"fanout": float64(3)}
		if err := bc.Provision(env); err != nil {
			b.Fatal(err)
		}
		if err := bc.Start(ctx); err != nil {
			b.Fatal(err)
		}
		closers = append(closers, bc.Close, sw.Close)
		go func() {
			for d := range bc.Deliveries() {
				at := time.Now()
				if round, err := strconv.Atoi(string(d.Payload[len("bcast-"):])); err == nil {
					c.arrivals <- arrival{node: i, round: round, at: at}
				}
			}
		}()
		c.nodes = append(c.nodes, bc)
		swims = append(swims, sw)
	}
	for _, sw := range swims {
		waitFullView(ctx, b, sw)
	}
	b.Logf("rime: %d nodes up and every view full in %v", bcastNodes, time.Since(t0).Round(time.Millisecond))
	return c
}

// waitFullView waits on sw's membership events until it sees every node
// alive.
func waitFullView(ctx context.Context, b *testing.B, sw *swim.Swim) {
	events, cancel := sw.Subscribe()
	defer cancel()
	for {
		alive := 0
		for _, m := range sw.Members() {
			if m.State == protocols.MemberAlive {
				alive++
			}
		}
		if alive == bcastNodes {
			return
		}
		select {
		case <-events:
		case <-ctx.Done():
			b.Fatalf("swim: %s sees %d of %d alive", sw.Self().ID, alive, bcastNodes)
		}
	}
}

func (c *rimeCluster) broadcast(b *testing.B, round, sender int) ([]time.Duration, int) {
	start := time.Now()
	if err := c.nodes[sender].Broadcast(context.Background(), []byte(fmt.Sprintf("bcast-%d", round))); err != nil {
		b.Fatal(err)
	}
	return roundTimes(c.arrivals, round, start)
}
