package epidemicbroadcast

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
)

// sim runs Cores on a simulated network in rounds, deterministically
// from a seed: in each round every datagram in flight is delivered, in a
// random order, except those held back to a later round (reordering);
// datagrams are lost and duplicated at random, and cut by partitions at
// send and at delivery; then every live node ticks. Every datagram is
// encoded and decoded, so the wire format is exercised too. A node's ID
// is its address.
type sim struct {
	t     *testing.T
	rng   *rand.Rand
	cfg   Config
	addrs []string
	nodes map[string]*simNode

	inflight                []simPacket
	loss, dup, reorder      float64
	group                   map[string]int // partition side; absent: none
	sent, lost, duplicated  int
	heldBack, cut, datagram int
	epochs                  uint64
	// indexed: payloads start with a 6-digit index, and deliveries are
	// checked against a bitmap per node instead of a map, so that the
	// test's own memory stays bounded.
	indexed bool
	bitmaps map[string][]uint64
}

type simNode struct {
	core *Core
	up   bool
	// got counts the deliveries of each payload by this incarnation.
	got map[string]int
}

type simPacket struct {
	from, to string
	buf      []byte
}

func newSim(t *testing.T, n int, seed uint64, cfg Config) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 1)), cfg: cfg, nodes: map[string]*simNode{}, group: map[string]int{}}
	for i := range n {
		s.addrs = append(s.addrs, fmt.Sprintf("n%02d", i))
	}
	for _, a := range s.addrs {
		s.start(a)
	}
	return s
}

// start (re)starts the node at addr as a new incarnation with empty state.
func (s *sim) start(addr string) {
	s.epochs++
	c, err := NewCore(addr, s.epochs, s.cfg, rand.New(rand.NewPCG(s.rng.Uint64(), s.epochs)))
	if err != nil {
		s.t.Fatal(err)
	}
	var peers []string
	for _, a := range s.addrs {
		if a != addr {
			peers = append(peers, a)
		}
	}
	c.SetPeers(peers)
	s.nodes[addr] = &simNode{core: c, up: true, got: map[string]int{}}
}

func (s *sim) crash(addr string) { s.nodes[addr].up = false }

func (s *sim) partition(groups ...[]string) {
	s.group = map[string]int{}
	for i, g := range groups {
		for _, a := range g {
			s.group[a] = i
		}
	}
}

func (s *sim) heal() { s.group = map[string]int{} }

func (s *sim) reachable(from, to string) bool {
	gf, okf := s.group[from]
	gt, okt := s.group[to]
	return (!okf || !okt || gf == gt) && s.nodes[to].up
}

func (s *sim) broadcast(addr, payload string) {
	rd, err := s.nodes[addr].core.Broadcast([]byte(payload))
	if err != nil {
		s.t.Fatal(err)
	}
	s.carryOut(addr, rd)
}

// carryOut sends what rd says and records its deliveries, failing the
// test at the first delivery of a payload twice to one incarnation.
func (s *sim) carryOut(addr string, rd Ready) {
	n := s.nodes[addr]
	for _, d := range rd.Deliver {
		if s.indexed {
			i, err := strconv.Atoi(string(d.Payload[:6]))
			if err != nil {
				s.t.Fatal(err)
			}
			bm := s.bitmaps[addr]
			if bm[i/64]&(1<<(i%64)) != 0 {
				s.t.Fatalf("%s delivered message %d twice", addr, i)
			}
			bm[i/64] |= 1 << (i % 64)
			continue
		}
		p := string(d.Payload)
		n.got[p]++
		if n.got[p] > 1 {
			s.t.Fatalf("%s delivered %q %d times", addr, p, n.got[p])
		}
	}
	for _, e := range rd.Send {
		s.datagram++
		buf := encode(nil, e.Msg)
		s.sent++
		if !s.reachable(addr, e.To) {
			s.cut++
			continue
		}
		if s.rng.Float64() < s.loss {
			s.lost++
			continue
		}
		s.inflight = append(s.inflight, simPacket{addr, e.To, buf})
		if s.rng.Float64() < s.dup {
			s.duplicated++
			s.inflight = append(s.inflight, simPacket{addr, e.To, buf})
		}
	}
}

// round delivers what is in flight and ticks every live node.
func (s *sim) round() {
	batch := s.inflight
	s.inflight = nil
	s.rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	for _, p := range batch {
		if s.rng.Float64() < s.reorder {
			s.heldBack++
			s.inflight = append(s.inflight, p)
			continue
		}
		if !s.reachable(p.from, p.to) {
			s.cut++
			continue
		}
		m, err := decode(p.buf)
		if err != nil {
			s.t.Fatalf("%s -> %s: %v", p.from, p.to, err)
		}
		s.carryOut(p.to, s.nodes[p.to].core.Step(p.from, m))
	}
	for _, a := range s.addrs {
		if s.nodes[a].up {
			s.carryOut(a, s.nodes[a].core.Tick())
		}
	}
}

// runUntil runs rounds until done reports nil, failing after max rounds
// with done's last complaint. It returns the rounds it took.
func (s *sim) runUntil(max int, done func() error) int {
	s.t.Helper()
	for r := 0; ; r++ {
		err := done()
		if err == nil {
			return r
		}
		if r == max {
			s.t.Fatalf("after %d rounds: %v", max, err)
		}
		s.round()
	}
}

// haveAll reports the first of nodes that has not delivered every payload.
func (s *sim) haveAll(nodes []string, payloads []string) error {
	for _, a := range nodes {
		for _, p := range payloads {
			if s.nodes[a].got[p] != 1 {
				return fmt.Errorf("%s has delivered %q %d times", a, p, s.nodes[a].got[p])
			}
		}
	}
	return nil
}

func testConfig() Config {
	c := DefaultConfig()
	c.Fanout = 3
	c.DigestTicks = 1
	return c
}

func TestSimEveryNodeOnceUnderLossDuplicationReorder(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := newSim(t, 24, seed, testConfig())
			s.loss, s.dup, s.reorder = 0.2, 0.2, 0.3
			var payloads []string
			for r := range 5 {
				for o := range 10 {
					p := fmt.Sprintf("m%d-%d", o, r)
					s.broadcast(s.addrs[o*2], p)
					payloads = append(payloads, p)
				}
				s.round()
			}
			rounds := s.runUntil(200, func() error { return s.haveAll(s.addrs, payloads) })
			// Keep going: anti-entropy and late duplicates must not deliver
			// anything again (carryOut fails the test if they do).
			for range 50 {
				s.round()
			}
			if err := s.haveAll(s.addrs, payloads); err != nil {
				t.Fatal(err)
			}
			if s.lost == 0 || s.duplicated == 0 || s.heldBack == 0 {
				t.Fatalf("faults did not happen: lost %d duplicated %d held back %d", s.lost, s.duplicated, s.heldBack)
			}
			var dups uint64
			for _, a := range s.addrs {
				dups += s.nodes[a].core.Stats().Duplicates
			}
			if dups == 0 {
				t.Fatal("no node ever saw a duplicate: the exactly-once check proved nothing")
			}
			t.Logf("all 24 nodes had all 50 messages %d rounds after the last broadcast; %d datagrams, %d lost, %d duplicated, %d held back; %d duplicates dropped",
				rounds, s.sent, s.lost, s.duplicated, s.heldBack, dups)
		})
	}
}

func TestSimPartitionThenHeal(t *testing.T) {
	s := newSim(t, 20, 7, testConfig())
	left, right := s.addrs[:10], s.addrs[10:]
	s.partition(left, right)
	var lp, rp []string
	for i := range 10 {
		p, q := fmt.Sprintf("left%d", i), fmt.Sprintf("right%d", i)
		s.broadcast(left[i], p)
		s.broadcast(right[i], q)
		lp, rp = append(lp, p), append(rp, q)
	}
	s.runUntil(100, func() error {
		if err := s.haveAll(left, lp); err != nil {
			return err
		}
		return s.haveAll(right, rp)
	})
	for range 20 {
		s.round()
	}
	for _, a := range left {
		if s.nodes[a].got[rp[0]] != 0 {
			t.Fatalf("%s has a message from across the partition", a)
		}
	}
	s.heal()
	rounds := s.runUntil(100, func() error { return s.haveAll(s.addrs, append(slices.Clone(lp), rp...)) })
	t.Logf("both sides had everything %d rounds after the heal", rounds)
}

func TestSimCrashedNodeCatchesUpOnRestart(t *testing.T) {
	s := newSim(t, 20, 11, testConfig())
	s.loss = 0.1
	victim := s.addrs[7]
	var before, during []string
	for i := range 20 {
		p := fmt.Sprintf("before%d", i)
		s.broadcast(s.addrs[i%20], p)
		before = append(before, p)
	}
	s.runUntil(100, func() error { return s.haveAll(s.addrs, before) })
	s.crash(victim)
	var others []string
	for _, a := range s.addrs {
		if a != victim {
			others = append(others, a)
		}
	}
	for i := range 20 {
		p := fmt.Sprintf("during%d", i)
		s.broadcast(others[i%len(others)], p)
		during = append(during, p)
	}
	s.runUntil(100, func() error { return s.haveAll(others, during) })
	// A new incarnation with empty state: it gets, once, everything still
	// retained, and what it broadcasts reaches everyone even though its
	// previous incarnation used the same sequence numbers.
	s.start(victim)
	s.broadcast(victim, "back")
	all := append(append(slices.Clone(before), during...), "back")
	rounds := s.runUntil(100, func() error {
		if err := s.haveAll([]string{victim}, all); err != nil {
			return err
		}
		return s.haveAll(s.addrs, []string{"back"})
	})
	t.Logf("the restarted node had all %d retained messages after %d rounds", len(all), rounds)
}

// TestSimMemoryBound100k pushes 100,000 messages through five nodes with
// small bounds and checks at every round that each stays within them,
// and that the heap does not grow between 20,000 and 100,000 messages.
func TestSimMemoryBound100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100k messages")
	}
	cfg := testConfig()
	cfg.MaxRetained = 256
	cfg.MaxRetainedBytes = 16 << 10
	cfg.Window = 256
	cfg.RetainTicks = 20
	cfg.MaxOrigins = 8
	cfg.MaxEpochs = 2
	s := newSim(t, 5, 3, cfg)
	s.loss, s.dup, s.reorder = 0.1, 0.05, 0.2
	const total = 100_000
	s.indexed, s.bitmaps = true, map[string][]uint64{}
	for _, a := range s.addrs {
		s.bitmaps[a] = make([]uint64, total/64+1)
	}
	var heapAt20k uint64
	for i := range total {
		s.broadcast(s.addrs[i%len(s.addrs)], fmt.Sprintf("%06d-%s", i, "0123456789abcdef0123456789abcdef"))
		if i%25 == 24 {
			s.round()
			for _, a := range s.addrs {
				checkBounds(t, s.nodes[a].core, cfg)
			}
		}
		if i == 20_000 {
			heapAt20k = liveHeap()
		}
		if i%30_000 == 29_999 {
			// A restart: a new incarnation, so streams of old epochs
			// pile up until MaxEpochs and MaxOrigins hold them.
			s.start(s.addrs[1])
			clear(s.bitmaps[s.addrs[1]])
		}
	}
	heapAt100k := liveHeap()
	var delivered uint64
	for _, a := range s.addrs {
		st := s.nodes[a].core.Stats()
		if a != s.addrs[1] {
			delivered += st.Delivered
		}
		t.Logf("%s: %+v", a, st)
	}
	// Some are lost to a node: dropped on the way and evicted everywhere
	// before a digest asked for them (the bounds are small here).
	if want := uint64(len(s.addrs)-1) * total * 98 / 100; delivered < want {
		t.Fatalf("%d deliveries on the nodes never restarted, want at least %d", delivered, want)
	}
	// The restarted node's last incarnation has what came after it.
	after := 0
	for i := 90_000; i < total; i++ {
		if s.bitmaps[s.addrs[1]][i/64]&(1<<(i%64)) != 0 {
			after++
		}
	}
	if after < 9_800 {
		t.Fatalf("the restarted node delivered %d of the 10000 messages broadcast after its restart", after)
	}
	t.Logf("live heap: %d KiB at 20k messages, %d KiB at 100k", heapAt20k>>10, heapAt100k>>10)
	if heapAt100k > heapAt20k+512<<10 {
		t.Fatalf("live heap grew by %d KiB between 20k and 100k messages", (heapAt100k-heapAt20k)>>10)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// checkBounds fails the test if c holds more than doc.go's bound.
func checkBounds(t *testing.T, c *Core, cfg Config) {
	t.Helper()
	st := c.Stats()
	switch {
	case st.Retained > cfg.MaxRetained:
		t.Fatalf("%d retained, bound %d", st.Retained, cfg.MaxRetained)
	case st.RetainedBytes > cfg.MaxRetainedBytes:
		t.Fatalf("%d retained bytes, bound %d", st.RetainedBytes, cfg.MaxRetainedBytes)
	case st.Origins > cfg.MaxOrigins:
		t.Fatalf("%d origins, bound %d", st.Origins, cfg.MaxOrigins)
	case st.Streams > cfg.MaxOrigins*cfg.MaxEpochs:
		t.Fatalf("%d streams, bound %d", st.Streams, cfg.MaxOrigins*cfg.MaxEpochs)
	case st.WindowBits > st.Streams*cfg.Window:
		t.Fatalf("%d window bits for %d streams", st.WindowBits, st.Streams)
	case cap(c.retained) > 4*max(st.Retained, 64)+1 && cap(c.retained) > 2*cfg.MaxRetained+1:
		t.Fatalf("retention array of capacity %d for %d live entries", cap(c.retained), st.Retained)
	}
}
