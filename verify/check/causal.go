package check

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// Causal checks causal consistency of logs and delivery streams.
//
// The causes of an update are the values its client had seen before
// invoking it: its own earlier acknowledged updates (session order),
// what its earlier reads returned and what its session had delivered
// (reads-from), the Deps the history declares, and, transitively, their
// causes. Then:
//
//  1. no read and no session's delivery stream shows an update before
//     one of its causes in the same key (a read shows the whole log, so
//     the cause must be in it, earlier);
//  2. a read returns everything in its client's causal past in that key
//     (its own acknowledged updates, what it saw before, their causes),
//     except values some Remove may have taken out; a delivery stream
//     is asynchronous and is not held to this;
//  3. causality has no cycles.
//
// An update whose outcome is unknown counts only if some read or
// delivery saw it, and its client's later updates do not depend on it
// (it may have taken effect after them). Failed updates never happened.
func Causal(h History) (Result, error) { return CausalWith(h, CausalConfig{}) }

// CausalConfig configures CausalWith.
type CausalConfig struct {
	// UnorderedReads: reads list values in an order that is not the
	// order of their effects (a set's members sorted, a text's inserts
	// by position), so reads are held to rule 2 only; delivery streams
	// are still held to rule 1.
	UnorderedReads bool
}

// CausalWith is Causal with a configuration.
func CausalWith(h History, cfg CausalConfig) (Result, error) {
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("check: causal: %w", err)
	}
	g := newCausalGraph(h.Ops)
	var c collector
	g.readValues(&c)
	g.close(&c)
	g.checkViews(&c, cfg.UnorderedReads)
	g.checkPast(&c)
	return c.result(CheckCausal), nil
}

// bitset is a set of update indices.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}
func (b bitset) clone() bitset      { return slices.Clone(b) }
func (b bitset) each(f func(i int)) { b.eachWord(f) }
func (b bitset) eachWord(f func(int)) {
	for w, x := range b {
		for x != 0 {
			t := bits.TrailingZeros64(x)
			f(w*64 + t)
			x &^= 1 << t
		}
	}
}

// firstMissing returns the first index in want & mask that is not in have, or -1.
func firstMissing(want, mask, have bitset) int {
	for w := range want {
		if x := want[w] & mask[w] &^ have[w]; x != 0 {
			return w*64 + bits.TrailingZeros64(x)
		}
	}
	return -1
}

type causalGraph struct {
	ops     []Op
	writes  []Op           // updates that took effect
	index   map[string]int // value -> index in writes
	writers map[string]Op  // every update by value
	direct  []bitset       // direct causes of each write
	closure []bitset       // all causes of each write
	keys    map[string]bitset
	// clients' operations in program order (by call), and views.
	clients map[int][]Op
	streams map[string][]Op
	// removed are writes a Remove that did not fail names: a read need
	// not include them (set removes are not ordered against reads here).
	removed bitset
}

func newCausalGraph(ops []Op) *causalGraph {
	g := &causalGraph{ops: ops, index: map[string]int{}, writers: updatesByValue(ops), keys: map[string]bitset{}, clients: map[int][]Op{}}
	seen := map[string]bool{}
	for _, op := range ops {
		if op.Outcome == OK {
			for _, v := range op.Values {
				seen[v] = true
			}
			if op.Kind == Delivered {
				seen[op.Value] = true
			}
		}
	}
	for _, op := range ops {
		if op.isUpdate() && (op.Outcome == OK || op.Outcome == Info && seen[op.Value]) {
			g.index[op.Value] = len(g.writes)
			g.writes = append(g.writes, op)
		}
	}
	n := len(g.writes)
	g.removed = newBitset(n)
	for _, op := range ops {
		if i, ok := g.index[op.Value]; ok && op.Kind == Remove && op.Outcome != Fail {
			g.removed.set(i)
		}
	}
	for i, w := range g.writes {
		if g.keys[w.Key] == nil {
			g.keys[w.Key] = newBitset(n)
		}
		g.keys[w.Key].set(i)
	}
	for _, op := range ops {
		if op.Outcome == OK || op.isUpdate() {
			g.clients[op.Client] = append(g.clients[op.Client], op)
		}
	}
	for _, ops := range g.clients {
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	}
	g.streams = deliveryStreams(ops)

	// Direct causes: walk each client's operations in program order,
	// folding in what it saw (and its own acknowledged updates) as they
	// complete.
	g.direct = make([]bitset, n)
	for _, cops := range g.clients {
		g.walk(cops, func(w Op, obs bitset) {
			i, ok := g.index[w.Value]
			if !ok {
				return
			}
			d := obs.clone()
			for _, v := range w.Deps {
				if j, ok := g.index[v]; ok {
					d.set(j)
				}
			}
			g.direct[i] = d
		}, nil)
	}
	for i := range g.direct {
		if g.direct[i] == nil {
			g.direct[i] = newBitset(n)
		}
	}
	return g
}

// walk visits a client's operations in program order with the set of
// values the client had observed directly when invoking each: its own
// acknowledged updates, the values of its reads that had returned and
// of its deliveries strictly earlier. onWrite sees each update, onRead
// each ok read.
func (g *causalGraph) walk(cops []Op, onWrite func(Op, bitset), onRead func(Op, bitset)) {
	obs := newBitset(len(g.writes))
	var done []Op // completed-but-not-folded observations, by time
	fold := func(now int64) {
		keep := done[:0]
		for _, o := range done {
			if o.Return < now || o.Kind != Delivered && o.Return <= now {
				g.observe(obs, o)
			} else {
				keep = append(keep, o)
			}
		}
		done = keep
	}
	for _, op := range cops {
		fold(op.Call)
		switch {
		case op.isUpdate():
			onWrite(op, obs)
			if op.Outcome == OK {
				done = append(done, op)
			}
		case op.isRead():
			if onRead != nil {
				onRead(op, obs)
			}
			done = append(done, op)
		case op.Kind == Delivered:
			done = append(done, op)
		}
	}
}

// observe adds what op made its client see.
func (g *causalGraph) observe(obs bitset, op Op) {
	add := func(v string) {
		if i, ok := g.index[v]; ok {
			obs.set(i)
		}
	}
	if op.isRead() {
		for _, v := range op.Values {
			add(v)
		}
		return
	}
	add(op.Value)
}

// readValues reports values shown that no update of that key wrote, or
// whose update failed.
func (g *causalGraph) readValues(c *collector) {
	reported := map[string]bool{}
	for _, op := range g.ops {
		if op.Outcome != OK {
			continue
		}
		vals := op.Values
		if op.Kind == Delivered {
			vals = []string{op.Value}
		}
		for _, v := range vals {
			if reported[v] {
				continue
			}
			w, ok := g.writers[v]
			switch {
			case !ok:
				reported[v] = true
				c.addf([]Op{op}, "%s showed %q, which no operation wrote", op.Kind, v)
			case w.Outcome == Fail:
				reported[v] = true
				c.addf([]Op{op, w}, "%s showed %q, whose write failed (definitely not applied)", op.Kind, v)
			case w.Key != op.Key:
				reported[v] = true
				c.addf([]Op{op, w}, "%s of key %q showed %q, written to key %q", op.Kind, op.Key, v, w.Key)
			}
		}
	}
}

// close computes every write's transitive causes, reporting cycles.
func (g *causalGraph) close(c *collector) {
	n := len(g.writes)
	g.closure = make([]bitset, n)
	const (
		white = iota
		grey
		black
	)
	color := make([]int, n)
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		cl := g.direct[i].clone()
		covered := newBitset(n) // writes whose causes cl already holds
		var ds []int
		g.direct[i].each(func(d int) { ds = append(ds, d) })
		// Later writes first: their causes usually cover earlier ones.
		for k := len(ds) - 1; k >= 0; k-- {
			d := ds[k]
			switch color[d] {
			case grey:
				at := slices.Index(stack, d)
				var cyc []Op
				var names []string
				for _, j := range stack[at:] {
					cyc = append(cyc, g.writes[j])
					names = append(names, fmt.Sprintf("%q", g.writes[j].Value))
				}
				c.addf(cyc, "causal cycle: %s each depend on the next and the last on the first", strings.Join(names, ", "))
				continue
			case white:
				visit(d)
			}
			if covered.has(d) {
				continue
			}
			cl.or(g.closure[d])
			covered.or(g.closure[d])
		}
		g.closure[i] = cl
		color[i] = black
		stack = stack[:len(stack)-1]
	}
	for i := range n {
		if color[i] == white {
			visit(i)
		}
	}
}

// checkViews holds every read and delivery stream to rule 1.
func (g *causalGraph) checkViews(c *collector, unorderedReads bool) {
	var views []Op
	for _, op := range g.ops {
		if op.isRead() && op.Outcome == OK && !unorderedReads {
			views = append(views, op)
		}
	}
	var keys []string
	for k := range g.streams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		views = append(views, g.streams[k]...)
	}
	n := len(g.writes)
	for _, view := range views {
		mask := g.keys[view.Key]
		if mask == nil {
			continue
		}
		shown := newBitset(n)
		for _, v := range view.Values {
			i, ok := g.index[v]
			if !ok {
				continue
			}
			if m := firstMissing(g.closure[i], mask, shown); m >= 0 {
				c.add(g.explainInversion(view, i, m))
				break
			}
			shown.set(i)
		}
	}
}

// explainInversion names the inversion and the chain of causes from the
// update shown to the cause missing before it.
func (g *causalGraph) explainInversion(view Op, shown, cause int) Violation {
	what := "a read"
	if view.Kind == Delivered {
		what = fmt.Sprintf("client %d's delivery stream", view.Client)
	}
	rel := "without"
	if slices.Contains(view.Values, g.writes[cause].Value) {
		rel = "before"
	}
	path := g.path(shown, cause)
	var steps []string
	ops := []Op{view}
	for k := 0; k+1 < len(path); k++ {
		a, b := g.writes[path[k]], g.writes[path[k+1]]
		steps = append(steps, fmt.Sprintf("%q %s %q", a.Value, g.why(a, b), b.Value))
		ops = append(ops, a)
	}
	ops = append(ops, g.writes[cause])
	return Violation{Ops: ops, Explain: fmt.Sprintf("causal inversion: %s shows %q %s its cause %q (%s)",
		what, g.writes[shown].Value, rel, g.writes[cause].Value, strings.Join(steps, ", "))}
}

// why says why update a directly depends on b.
func (g *causalGraph) why(a, b Op) string {
	switch {
	case slices.Contains(a.Deps, b.Value):
		return "declares it depends on"
	case a.Client == b.Client:
		return "was written after its client's"
	}
	return "was written after its client saw"
}

// path returns a shortest chain of direct causes from write i to j.
func (g *causalGraph) path(i, j int) []int {
	prev := map[int]int{i: -1}
	queue := []int{i}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if x == j {
			break
		}
		g.direct[x].each(func(d int) {
			if _, ok := prev[d]; !ok {
				prev[d] = x
				queue = append(queue, d)
			}
		})
	}
	if _, ok := prev[j]; !ok {
		return []int{i, j}
	}
	var p []int
	for x := j; x != -1; x = prev[x] {
		p = append(p, x)
	}
	slices.Reverse(p)
	return p
}

// checkPast holds every read to rule 2.
func (g *causalGraph) checkPast(c *collector) {
	var clients []int
	for id := range g.clients {
		clients = append(clients, id)
	}
	sort.Ints(clients)
	for _, id := range clients {
		g.walk(g.clients[id], func(Op, bitset) {}, func(r Op, obs bitset) {
			mask := g.keys[r.Key]
			if mask == nil {
				return
			}
			past := obs.clone()
			obs.each(func(i int) { past.or(g.closure[i]) })
			have := g.removed.clone()
			for _, v := range r.Values {
				if i, ok := g.index[v]; ok {
					have.set(i)
				}
			}
			if m := firstMissing(past, mask, have); m >= 0 {
				w := g.writes[m]
				how := "it is a cause of something the client saw"
				switch {
				case w.Client == r.Client:
					how = "the client wrote it, and it was acknowledged, before the read"
				case obs.has(m):
					how = "the client had seen it before the read"
				}
				c.addf([]Op{r, w}, "causal past missing: a read by client %d does not include %q, though %s", r.Client, w.Value, how)
			}
		})
	}
}
