package causal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rime-dev/rime/crdt/vv"
)

// Random runs: nodes broadcast after delivering random parts of what the
// others sent, so messages have real causal pasts; the network reorders,
// duplicates and relays messages (gossip) and the buffer is sometimes
// tiny, so Step refuses and the network retries. Every node must deliver
// every message once, and CheckCausal must find nothing.
func TestRandomRunsAreCausal(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 3))
		n := 2 + int(seed%5)
		maxPending := 4096
		if seed%3 == 0 {
			maxPending = 2
		}
		var names []string
		nodes := map[string]*Node{}
		for i := range n {
			name := fmt.Sprintf("n%d", i)
			names = append(names, name)
			cfg := DefaultConfig(name)
			cfg.MaxPending = maxPending
			nd, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			nodes[name] = nd
		}
		type packet struct {
			to   string
			wire []byte
		}
		var net []packet
		send := func(from string, m Msg, to ...string) {
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range to {
				if r != from {
					net = append(net, packet{r, b})
				}
			}
		}
		deps := map[MsgID]vv.VV{}
		deliveries := map[string][]MsgID{}
		record := func(node string, rd Ready) {
			for _, m := range rd.Deliver {
				deliveries[node] = append(deliveries[node], m.ID)
			}
		}
		step := func() {
			k := rng.IntN(len(net))
			p := net[k]
			if rng.IntN(5) != 0 {
				net = slices.Delete(net, k, k+1)
			} // else it stays: a duplicate later
			m, err := DecodeMsg(p.wire)
			if err != nil {
				t.Fatal(err)
			}
			rd, err := nodes[p.to].Step(m)
			if errors.Is(err, ErrBufferFull) {
				net = append(net, p) // the network retries
				return
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			record(p.to, rd)
			for _, s := range rd.Send {
				if s.ID != m.ID {
					t.Fatalf("seed %d: Step sent %v, not the message it took", seed, s.ID)
				}
				if rng.IntN(3) == 0 { // gossip: relay to someone
					send(p.to, s, names[rng.IntN(n)])
				}
			}
		}
		total := 0
		for range 300 {
			if len(net) == 0 || rng.IntN(3) == 0 {
				from := names[rng.IntN(n)]
				rd := nodes[from].Broadcast([]byte(fmt.Sprint("m", total)))
				total++
				record(from, rd)
				for _, m := range rd.Send {
					deps[m.ID] = m.Deps
					send(from, m, names...)
				}
			} else {
				step()
			}
		}
		for len(net) > 0 {
			step()
		}
		if vs := CheckCausal(deliveries, deps); len(vs) > 0 {
			t.Fatalf("seed %d: %d violations, first %v", seed, len(vs), vs[0])
		}
		for _, name := range names {
			if got := len(deliveries[name]); got != total {
				t.Fatalf("seed %d: %s delivered %d of %d messages; waiting %v", seed, name, got, total, nodes[name].Pending())
			}
			if st := nodes[name].Stats(); st.Pending != 0 || st.PendingBytes != 0 {
				t.Fatalf("seed %d: %s still holds %+v", seed, name, st)
			}
		}
	}
}

func TestCheckCausalFindsViolations(t *testing.T) {
	a1, a2 := MsgID{Replica: "a", Seq: 1}, MsgID{Replica: "a", Seq: 2}
	b1 := MsgID{Replica: "b", Seq: 1}
	deps := map[MsgID]vv.VV{a1: {}, a2: {"a": 1}, b1: {"a": 1}}
	for _, tc := range []struct {
		name  string
		order []MsgID
		want  []string
	}{
		{"causal", []MsgID{a1, b1, a2}, nil},
		{"concurrent either way", []MsgID{a1, a2, b1}, nil},
		{"answer before question", []MsgID{b1, a1}, []string{"x delivered b:1 (#0): early, before a:1"}},
		{"sender order", []MsgID{a2, a1}, []string{"x delivered a:2 (#0): early, before a:1"}},
		{"twice", []MsgID{a1, a1}, []string{"x delivered a:1 (#1): duplicate"}},
		{"made up", []MsgID{{Replica: "z", Seq: 1}}, []string{"x delivered z:1 (#0): unknown"}},
		{"missing cause", []MsgID{a2}, []string{"x delivered a:2 (#0): early, before a:1"}},
	} {
		var got []string
		for _, v := range CheckCausal(map[string][]MsgID{"x": tc.order}, deps) {
			got = append(got, v.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig("a").Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{MaxPending: 0, MaxPendingBytes: -1}
	err := bad.Validate()
	for _, want := range []string{"ID", "MaxPending is 0", "MaxPendingBytes is -1"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("%v does not name %q", err, want)
		}
	}
}

func TestStepRefusesMalformed(t *testing.T) {
	n, _ := New(DefaultConfig("a"))
	for _, m := range []Msg{
		{ID: MsgID{Replica: "", Seq: 1}},
		{ID: MsgID{Replica: "b", Seq: 0}},
		{ID: MsgID{Replica: "b", Seq: 2}, Deps: vv.VV{"b": 5}},
		{ID: MsgID{Replica: "a", Seq: 1}},
	} {
		if _, err := n.Step(m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", m, err)
		}
	}
}

func FuzzDecodeMsg(f *testing.F) {
	for _, m := range []Msg{
		{ID: MsgID{Replica: "a", Seq: 1}, Deps: vv.VV{}, Payload: []byte("x")},
		{ID: MsgID{Replica: "b", Seq: 3}, Deps: vv.VV{"a": 2, "b": 2, "c": 7}, Payload: nil},
	} {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMsg(b)
		if err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted a non-canonical message %x (re-encoded %x, %v)", b, again, err)
		}
		cfg := DefaultConfig("me")
		cfg.MaxPending = 1
		n, _ := New(cfg)
		n.Step(m)
		n.Step(m)
		n.Catchup(m.Deps)
	})
}
