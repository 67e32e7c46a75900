package check

import (
	"fmt"
	"sort"
)

// Sequential checks sequential consistency of logs: one total order of
// each key's appends, in which every client's operations take effect in
// the order the client issued them and every read returns the log as it
// stood at its place in that order; unlike Linearizable, real time
// between clients does not count. Every session's delivery stream must
// also be a state of the log in that order (a prefix of it).
//
// An operation whose outcome is unknown is taken out of its client's
// program order (as Jepsen retires such a process): it may take effect
// after the client's later operations.
//
// Keys are checked one at a time. Sequential consistency is not local:
// histories that are sequentially consistent on every key can still be
// inconsistent across keys, and this checker does not search for that.
func Sequential(h History) (Result, error) {
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("check: sequential: %w", err)
	}
	keys, groups := byKey(h.Ops, func(op Op) bool { return op.isUpdate() || op.isRead() })
	streams := deliveryStreams(h.Ops)
	for k := range streams {
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	writers := updatesByValue(h.Ops)
	var c collector
	for _, k := range keys {
		var views []Op
		for _, s := range streams[k] {
			views = append(views, s)
		}
		var kc collector
		lk := prepareLog(k, groups[k], writers, func(Op) bool { return true }, views, &kc)
		if kc.empty() {
			lk.programOrder(&kc)
		}
		for _, v := range kc.vs {
			c.add(v)
		}
		c.omitted += kc.omitted
	}
	return c.result(CheckSequential), nil
}

// deliveryStreams returns, per key, each session's deliveries as one
// Delivered op whose Values are the stream in order, spanning the first
// delivery's call to the last one's return.
func deliveryStreams(ops []Op) map[string][]Op {
	type session struct {
		client int
		key    string
	}
	var order []session
	byS := map[session][]Op{}
	for _, op := range ops {
		if op.Kind != Delivered {
			continue
		}
		s := session{op.Client, op.Key}
		if _, ok := byS[s]; !ok {
			order = append(order, s)
		}
		byS[s] = append(byS[s], op)
	}
	out := map[string][]Op{}
	for _, s := range order {
		ds := byS[s]
		sort.SliceStable(ds, func(i, j int) bool { return ds[i].Call < ds[j].Call })
		v := Op{Client: s.client, Node: ds[0].Node, Kind: Delivered, Key: s.key, Call: ds[0].Call, Return: ds[len(ds)-1].Return, Outcome: OK}
		for _, d := range ds {
			v.Values = append(v.Values, d.Value)
		}
		out[s.key] = append(out[s.key], v)
	}
	return out
}

// programOrder decides whether the key's operations can be interleaved
// in each client's order. ref fixes the order of the appends reads saw,
// and appends nobody saw come after them, so the log's length n is the
// whole state, and there is no choice to search: at each n, every read
// at the head of its client's queue that returned n values must take
// effect now (a later append would make it impossible), and then the
// only operation that can move n is the append of ref[n], which must be
// at the head of its client's queue. If it is not, the operation ahead
// of it is the counterexample.
func (lk *logKey) programOrder(c *collector) {
	var chains [][]Op
	byClient := map[int]int{}
	for _, op := range append(append([]Op(nil), lk.appends...), lk.reads...) {
		if op.Outcome == Info || op.Kind == Delivered {
			chains = append(chains, []Op{op})
			continue
		}
		i, ok := byClient[op.Client]
		if !ok {
			i = len(chains)
			byClient[op.Client] = i
			chains = append(chains, nil)
		}
		chains[i] = append(chains[i], op)
	}
	where := map[string]int{} // an append's value -> its chain
	for i, ch := range chains {
		sort.SliceStable(ch, func(a, b int) bool { return ch[a].Call < ch[b].Call })
		for _, op := range ch {
			if op.isUpdate() {
				where[op.Value] = i
			}
		}
	}
	// need is the log length at which op can take effect; -1 means after
	// every append a read saw.
	need := func(op Op) int {
		if op.isUpdate() {
			if p, ok := lk.pos[op.Value]; ok {
				return p
			}
			return -1
		}
		return len(op.Values)
	}
	head := make([]int, len(chains))
	L := len(lk.ref)
	for n := 0; ; n++ {
		for moved := true; moved; {
			moved = false
			for i, ch := range chains {
				for head[i] < len(ch) && !ch[head[i]].isUpdate() && need(ch[head[i]]) == n {
					head[i]++
					moved = true
				}
			}
		}
		if n >= L {
			break
		}
		i, ok := where[lk.ref[n]]
		if !ok {
			continue // no append took effect; prepareLog reported the read
		}
		ch := chains[i]
		if ch[head[i]].Value == lk.ref[n] {
			head[i]++
			continue
		}
		c.add(explainProgramOrder(ch, head[i], n, lk.ref[n], lk.pos))
		return
	}
	// At n == L, the reads are done; only appends nobody saw may remain.
	for i, ch := range chains {
		for j := head[i]; j < len(ch); j++ {
			if !ch[j].isUpdate() {
				c.add(explainProgramOrder(ch, j, L, "", lk.pos))
				return
			}
		}
	}
}

// explainProgramOrder says why the operation at ch[at] blocks the order
// when the log has n appends and the next must be next (empty: the reads
// are done).
func explainProgramOrder(ch []Op, at, n int, next string, pos map[string]int) Violation {
	op := ch[at]
	who := fmt.Sprintf("client %d", op.Client)
	var prev Op
	if at > 0 {
		prev = ch[at-1]
	}
	switch {
	case op.isUpdate():
		where := "in no read"
		if p, ok := pos[op.Value]; ok {
			where = fmt.Sprintf("at position %d", p)
		}
		return Violation{Ops: []Op{op}, Explain: fmt.Sprintf(
			"program order: %s appended %q before %q, but the log has %q at position %d and %q %s",
			who, op.Value, next, next, n, op.Value, where)}
	case next != "" && len(op.Values) > n:
		return Violation{Ops: []Op{op}, Explain: fmt.Sprintf(
			"program order: %s read %q (position %d of the log) before it appended it", who, next, n)}
	case at > 0 && prev.isUpdate():
		return Violation{Ops: []Op{prev, op}, Explain: fmt.Sprintf(
			"program order: %s appended %q, then read %d values without it", who, prev.Value, len(op.Values))}
	case at > 0 && len(prev.Values) > len(op.Values):
		return Violation{Ops: []Op{prev, op}, Explain: fmt.Sprintf(
			"program order: %s read %d values, then only %d: its reads went back", who, len(prev.Values), len(op.Values))}
	}
	return Violation{Ops: []Op{op}, Explain: fmt.Sprintf(
		"program order: %s's %s fits nowhere in the one order of the log", who, op.Kind)}
}
