package crdt

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rime-dev/rime/crdt/vv"
)

// The CRDT laws, checked for every type on states made by random
// histories: merge is commutative, associative and idempotent; replicas
// that exchange deltas over a network that drops, duplicates and reorders
// them converge once anti-entropy has run; a delta since a peer's context
// has the effect of the whole state there; and it is as small as what the
// peer lacks. Seeds are fixed, so a failure names the seed that shows it.

var keys = []string{"k0", "k1", "k2", "k3", "k4"}

// randomOp is an operation of type t that is valid on s.
func randomOp(rng *rand.Rand, t Type, s State) Op {
	switch t {
	case TypeLog:
		return LogAppend{Data: []byte(fmt.Sprintf("u%d", rng.IntN(1000)))}
	case TypeRegister:
		return RegisterSet{Value: []byte(fmt.Sprintf("v%d", rng.IntN(1000)))}
	case TypeMap:
		k := keys[rng.IntN(len(keys))]
		if rng.IntN(3) == 0 {
			return MapDelete{Key: k}
		}
		return MapPut{Key: k, Value: []byte(fmt.Sprintf("v%d", rng.IntN(1000)))}
	case TypeSet:
		k := keys[rng.IntN(len(keys))]
		if rng.IntN(2) == 0 {
			return SetRemove{Elem: k}
		}
		return SetAdd{Elem: k}
	case TypeCounter:
		return CounterAdd{Delta: int64(rng.IntN(21) - 10)}
	case TypeText:
		n := s.(*Text).Len()
		if n > 0 && rng.IntN(3) == 0 {
			pos := rng.IntN(n)
			return TextDelete{Pos: pos, Len: 1 + rng.IntN(min(3, n-pos))}
		}
		words := []string{"a", "bc", "déf", "g h", "ij"}
		return TextInsert{Pos: rng.IntN(n + 1), Text: words[rng.IntN(len(words))]}
	}
	panic("unknown type " + t)
}

func mustNew(t testing.TB, typ Type) State {
	s, err := New(typ)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func enc(t testing.TB, s State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roundTrip encodes and decodes s, as if it crossed the network.
func roundTrip(t testing.TB, s State) State {
	t.Helper()
	b := enc(t, s)
	d, err := Decode(b)
	if err != nil {
		t.Fatalf("decoding a %s: %v\n%x", s.Type(), err, b)
	}
	if again := enc(t, d); !bytes.Equal(again, b) {
		if x, ok := s.(*Text); ok {
			t.Logf("before: %s\nafter: %s", dumpText(x), dumpText(d.(*Text)))
		}
		t.Fatalf("%s: decode then encode changed the bytes\n%x\n%x", s.Type(), b, again)
	}
	return d
}

func merged(t testing.TB, a, b State) State {
	t.Helper()
	c := a.Clone()
	if err := c.Merge(b); err != nil {
		t.Fatal(err)
	}
	return c
}

func sameState(t testing.TB, what string, a, b State) {
	t.Helper()
	for _, s := range []State{a, b} {
		if x, ok := s.(*Text); ok {
			if n := len([]rune(x.String())); n != x.Len() {
				t.Fatalf("%s: text %q counts %d characters", what, x.String(), x.Len())
			}
		}
	}
	if !Equal(a, b) {
		t.Fatalf("%s: states differ\n%s\n%s", what, describe(a), describe(b))
	}
}

func describe(s State) string {
	v := ""
	switch x := s.(type) {
	case *Log:
		v = fmt.Sprint(len(x.entries), " entries")
	case *Register:
		val, ok := x.Get()
		v = fmt.Sprintf("%q %v", val, ok)
	case *Map:
		v = fmt.Sprint(x.m.keys, " kills ", x.m.rm.recs, " stable ", x.m.rm.stable)
	case *Set:
		v = fmt.Sprint(x.Elems(), " kills ", x.m.rm.recs, " stable ", x.m.rm.stable)
	case *Counter:
		v = fmt.Sprint(x.Value(), x.per)
	case *Text:
		v = fmt.Sprintf("%q held %d kills %v stable %v", x.String(), len(x.held), x.rm.recs, x.rm.stable)
	}
	return fmt.Sprintf("ctx %v: %s", s.Context(), v)
}

// cluster is n replicas of one type, with a network that loses,
// duplicates and reorders the deltas they send.
type cluster struct {
	t        testing.TB
	typ      Type
	rng      *rand.Rand
	replicas []State
	names    []string
	clock    uint64
	inflight []msg
}

type msg struct {
	to    int
	delta []byte
}

func newCluster(t testing.TB, typ Type, n int, seed uint64) *cluster {
	c := &cluster{t: t, typ: typ, rng: rand.New(rand.NewPCG(seed, 7))}
	for i := range n {
		c.replicas = append(c.replicas, mustNew(t, typ))
		// Long names, as node IDs are: the encoding must not repeat them.
		c.names = append(c.names, fmt.Sprintf("replica-%d-%s", i, "0123456789abcdef0123456789abcdef"))
	}
	return c
}

// op applies a random operation at replica i and sends its delta.
func (c *cluster) op(i int) {
	s := c.replicas[i]
	before := s.Clone()
	c.clock += uint64(c.rng.IntN(3)) // clocks may stand still: the hybrid clock copes
	delta, err := s.Apply(Stamp{Replica: c.names[i], Time: c.clock}, randomOp(c.rng, c.typ, s))
	if err != nil {
		c.t.Fatalf("apply: %v", err)
	}
	// The delta alone has the op's effect.
	sameState(c.t, "delta of a local op", merged(c.t, before, roundTrip(c.t, delta)), s)
	b := enc(c.t, delta)
	for j := range c.replicas {
		if j != i {
			c.inflight = append(c.inflight, msg{j, b})
		}
	}
}

// deliver hands a random message to its replica: sometimes it is lost,
// sometimes it stays in flight to be delivered again.
func (c *cluster) deliver() {
	if len(c.inflight) == 0 {
		return
	}
	k := c.rng.IntN(len(c.inflight))
	m := c.inflight[k]
	if c.rng.IntN(4) != 0 { // else: duplicated later
		c.inflight = append(c.inflight[:k], c.inflight[k+1:]...)
	}
	if c.rng.IntN(10) == 0 {
		return // lost
	}
	d, err := Decode(m.delta)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.replicas[m.to].Merge(d); err != nil {
		c.t.Fatal(err)
	}
}

// antiEntropy sends replica j what it lacks of replica i.
func (c *cluster) antiEntropy(i, j int) {
	a, b := c.replicas[i], c.replicas[j]
	want := merged(c.t, b, a)
	if err := b.Merge(roundTrip(c.t, a.DeltaSince(roundTripDots(c.t, b.Context())))); err != nil {
		c.t.Fatal(err)
	}
	sameState(c.t, fmt.Sprintf("delta since %v from %v", b.Context(), a.Context()), b, want)
}

func roundTripDots(t testing.TB, d *vv.Dots) *vv.Dots {
	b, _ := d.MarshalBinary()
	var out vv.Dots
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &out
}

// run performs steps random events.
func (c *cluster) run(steps int) {
	for range steps {
		switch x := c.rng.IntN(10); {
		case x < 4:
			c.op(c.rng.IntN(len(c.replicas)))
		case x < 9:
			c.deliver()
		default:
			i, j := c.rng.IntN(len(c.replicas)), c.rng.IntN(len(c.replicas))
			if i != j {
				c.antiEntropy(i, j)
			}
		}
	}
}

func (c *cluster) stable() vv.VV {
	s := c.replicas[0].Context().VV()
	for _, r := range c.replicas[1:] {
		s = s.Meet(r.Context().VV())
	}
	return s
}

func TestConvergence(t *testing.T) {
	for _, typ := range Types {
		t.Run(string(typ), func(t *testing.T) {
			for seed := range uint64(25) {
				c := newCluster(t, typ, 2+int(seed%4), seed)
				c.run(300)
				if seed%2 == 0 {
					// Compact on what every replica has seen; deltas still
					// in flight must not undo it.
					st := c.stable()
					for _, r := range c.replicas {
						r.Compact(st)
					}
					c.run(100)
				}
				// Heal: a ring of anti-entropy in both directions.
				n := len(c.replicas)
				for range 2 {
					for i := range n {
						c.antiEntropy(i, (i+1)%n)
					}
				}
				for i := 1; i < n; i++ {
					sameState(t, fmt.Sprintf("seed %d: replica %d after healing", seed, i), c.replicas[0], c.replicas[i])
				}
				// Stale deltas arriving after convergence change nothing.
				for len(c.inflight) > 0 {
					c.deliver()
				}
				for i := 1; i < n; i++ {
					sameState(t, fmt.Sprintf("seed %d: replica %d after stale deltas", seed, i), c.replicas[0], c.replicas[i])
				}
				// Once everything is stable, removal records are all gone.
				st := c.stable()
				for _, r := range c.replicas {
					r.Compact(st)
					if k := removalRecords(r); k != 0 {
						t.Fatalf("seed %d: %d removal records left after compaction on %v", seed, k, st)
					}
				}
			}
		})
	}
}

func removalRecords(s State) int {
	switch x := s.(type) {
	case *Map:
		return len(x.m.rm.recs)
	case *Set:
		return len(x.m.rm.recs)
	case *Text:
		return len(x.rm.recs)
	}
	return 0
}

// diverged returns three replicas that share some history, each with
// updates of its own, concurrent with the others'.
func diverged(t *testing.T, typ Type, seed uint64) (a, b, c State) {
	cl := newCluster(t, typ, 3, seed)
	cl.run(60)
	for len(cl.inflight) > 0 {
		cl.deliver()
	}
	for i := range 3 {
		for range cl.rng.IntN(6) {
			cl.op(i)
		}
	}
	return cl.replicas[0], cl.replicas[1], cl.replicas[2]
}

func TestMergeLaws(t *testing.T) {
	for _, typ := range Types {
		t.Run(string(typ), func(t *testing.T) {
			for seed := range uint64(100) {
				a, b, c := diverged(t, typ, seed)
				what := func(law string) string { return fmt.Sprintf("seed %d: %s", seed, law) }
				sameState(t, what("a⊔b = b⊔a"), merged(t, a, b), merged(t, b, a))
				sameState(t, what("(a⊔b)⊔c = a⊔(b⊔c)"), merged(t, merged(t, a, b), c), merged(t, a, merged(t, b, c)))
				sameState(t, what("a⊔a = a"), merged(t, a, a), a)
				sameState(t, what("(a⊔b)⊔b = a⊔b"), merged(t, merged(t, a, b), b), merged(t, a, b))
				// Deltas since a context are the whole state's effect, for
				// deltas coalesced before delivery too.
				for _, p := range []State{b, c, mustNew(t, typ)} {
					sameState(t, what("p⊔Δ(a, p) = p⊔a"), merged(t, p, a.DeltaSince(p.Context())), merged(t, p, a))
				}
				coalesced := merged(t, a.DeltaSince(c.Context()), b.DeltaSince(c.Context()))
				sameState(t, what("c⊔(Δ(a,c)⊔Δ(b,c)) = c⊔a⊔b"), merged(t, c, roundTrip(t, coalesced)), merged(t, merged(t, c, a), b))
			}
		})
	}
}

func TestMergeRefusesOtherTypes(t *testing.T) {
	for _, typ := range Types {
		s := mustNew(t, typ)
		for _, other := range Types {
			if other == typ {
				continue
			}
			if err := s.Merge(mustNew(t, other)); err == nil {
				t.Fatalf("a %s merged a %s", typ, other)
			}
		}
		if _, err := s.Apply(Stamp{Replica: "a"}, struct{ Op }{}); err == nil {
			t.Fatalf("a %s applied a foreign op", typ)
		}
	}
}

func dumpText(t *Text) string {
	s := ""
	for _, e := range t.list {
		s += fmt.Sprintf("[%v L%d p%v %q %v] ", e.id, e.lamport, e.parent, e.r, e.dead)
	}
	s += " held:"
	for _, e := range t.heldSorted() {
		s += fmt.Sprintf("[%v L%d p%v %q] ", e.id, e.lamport, e.parent, e.r)
	}
	return s
}
