package bench

// Benchmarks of rime's convergent data types (package crdt):
//
//   - BenchmarkCRDTApply: local operations per second, per type;
//   - BenchmarkCRDTMerge: decoding and merging the deltas of those
//     operations at another replica, per type;
//   - BenchmarkAntiEntropy: what a replica that missed k of n updates
//     receives when it reconnects (DeltaSince its context), against the
//     size of the k updates it missed as clients submitted them
//     (crdt.MarshalOp) and against the whole state. Target (issue 4):
//     catch-up traffic at most 1.5x the missed updates. The ratio is
//     reported as x-missed, the whole state's as full-x-missed; the
//     benchmark prints and never asserts.
//
// Run them with
//
//	go test ./bench/ -run '^$' -bench 'CRDT|AntiEntropy' -benchtime 3x

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/crdt/vv"
)

// writers are four node IDs shaped like identity.IDOf's ("n" and 16
// base32 characters): a group's phones and a cloud replica.
var writers = []string{"nq7x2kd4mfa5zjb3c", "nw3hyt6ep2ruv7sla", "nd5gk2c7xoq4mnz6e", "nb6vzr3h4kw2aj5ti"}

// workload makes the operations of a type's typical use, with 100-byte
// updates where the type has a payload.
type workload struct {
	typ    crdt.Type
	rng    *rand.Rand
	i      int
	cursor int
}

func newWorkload(typ crdt.Type) *workload {
	return &workload{typ: typ, rng: rand.New(rand.NewPCG(1, 2))}
}

// pool is random letters that payloads are cut from, so that making an
// update costs next to nothing beside the operation measured.
var pool = func() []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	p := make([]byte, 4096)
	for k := range p {
		p[k] = byte('a' + rng.IntN(26))
	}
	return p
}()

func (w *workload) payload() []byte {
	off := w.rng.IntN(len(pool) - 100)
	return pool[off : off+100 : off+100]
}

// next is the next operation on s.
func (w *workload) next(s crdt.State) crdt.Op {
	w.i++
	switch w.typ {
	case crdt.TypeLog:
		return crdt.LogAppend{Data: w.payload()}
	case crdt.TypeRegister:
		return crdt.RegisterSet{Value: w.payload()}
	case crdt.TypeMap:
		key := fmt.Sprintf("item-%d", w.rng.IntN(2000))
		if w.i%10 == 0 {
			return crdt.MapDelete{Key: key}
		}
		return crdt.MapPut{Key: key, Value: w.payload()}
	case crdt.TypeSet:
		elem := fmt.Sprintf("member-%d", w.rng.IntN(2000))
		if w.i%4 == 0 {
			return crdt.SetRemove{Elem: elem}
		}
		return crdt.SetAdd{Elem: elem}
	case crdt.TypeCounter:
		return crdt.CounterAdd{Delta: int64(w.rng.IntN(11) - 5)}
	case crdt.TypeText:
		// Typing: mostly one character at the cursor, some backspaces,
		// now and then a jump elsewhere.
		n := s.(*crdt.Text).Len()
		w.cursor = min(w.cursor, n)
		switch x := w.rng.IntN(100); {
		case x < 5 && w.cursor > 0:
			w.cursor--
			return crdt.TextDelete{Pos: w.cursor, Len: 1}
		case x < 10:
			w.cursor = w.rng.IntN(n + 1)
		}
		w.cursor++
		return crdt.TextInsert{Pos: w.cursor - 1, Text: string(rune('a' + w.rng.IntN(26)))}
	}
	panic(w.typ)
}

// apply performs op on s as the i-th operation of the history, at
// millisecond timestamps. Writers take turns in bursts of 25 operations,
// as people do (a burst of typing, a batch of sensor readings).
func apply(tb testing.TB, s crdt.State, i int, op crdt.Op) crdt.State {
	d, err := s.Apply(crdt.Stamp{Replica: writers[(i/25)%len(writers)], Time: 1_763_000_000_000 + uint64(i)}, op)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func newState(tb testing.TB, typ crdt.Type) crdt.State {
	s, err := crdt.New(typ)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// opsPerRun is the history length of the apply and merge benchmarks; a
// text's inserts scan it, so it is shorter.
func opsPerRun(typ crdt.Type) int {
	if typ == crdt.TypeText {
		return 5000
	}
	return 20000
}

func BenchmarkCRDTApply(b *testing.B) {
	for _, typ := range crdt.Types {
		b.Run(string(typ), func(b *testing.B) {
			n := opsPerRun(typ)
			for b.Loop() {
				s, w := newState(b, typ), newWorkload(typ)
				for i := range n {
					apply(b, s, i, w.next(s))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/apply")
		})
	}
}

func BenchmarkCRDTMerge(b *testing.B) {
	for _, typ := range crdt.Types {
		b.Run(string(typ), func(b *testing.B) {
			n := opsPerRun(typ)
			src, w := newState(b, typ), newWorkload(typ)
			deltas := make([][]byte, n)
			for i := range n {
				var err error
				if deltas[i], err = apply(b, src, i, w.next(src)).MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
			var dst crdt.State
			for b.Loop() {
				dst = newState(b, typ)
				for _, enc := range deltas {
					d, err := crdt.Decode(enc)
					if err != nil {
						b.Fatal(err)
					}
					if err := dst.Merge(d); err != nil {
						b.Fatal(err)
					}
				}
			}
			if !crdt.Equal(src, dst) {
				b.Fatal("merging every delta did not rebuild the state")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/merge")
		})
	}
}

func BenchmarkAntiEntropy(b *testing.B) {
	const history = 10000
	for _, typ := range crdt.Types {
		for _, k := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/missed=%d", typ, k), func(b *testing.B) {
				s, w := newState(b, typ), newWorkload(typ)
				var peer crdt.State
				missed := 0
				for i := range history {
					if i == history-k {
						peer = s.Clone()
					}
					op := w.next(s)
					if i >= history-k {
						enc, err := crdt.MarshalOp(op)
						if err != nil {
							b.Fatal(err)
						}
						missed += len(enc)
					}
					apply(b, s, i, op)
				}
				// The peer sends its context; the replica answers.
				ctx, err := peer.Context().MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				var sent []byte
				for b.Loop() {
					var pc vv.Dots
					if err := pc.UnmarshalBinary(ctx); err != nil {
						b.Fatal(err)
					}
					if sent, err = s.DeltaSince(&pc).MarshalBinary(); err != nil {
						b.Fatal(err)
					}
				}
				d, err := crdt.Decode(sent)
				if err != nil {
					b.Fatal(err)
				}
				if err := peer.Merge(d); err != nil {
					b.Fatal(err)
				}
				if !crdt.Equal(peer, s) {
					b.Fatal("the peer did not catch up")
				}
				full, _ := s.MarshalBinary()
				b.ReportMetric(float64(len(sent)), "delta-B")
				b.ReportMetric(float64(len(ctx)), "request-B")
				b.ReportMetric(float64(missed), "missed-B")
				b.ReportMetric(float64(len(sent)+len(ctx))/float64(missed), "x-missed")
				b.ReportMetric(float64(len(full))/float64(missed), "full-x-missed")
			})
		}
	}
}
