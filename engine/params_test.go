package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

// paramDecls are parameter constraints of the forms specs write, after
// their inputs are filled: each must be read off exactly as CUE answers
// value by value, or be left to CUE.
const paramDecls = `
class: {durability: 1, type: "map"}
eligible: 24
env: count: keepers: 5
params: {
	replicas: int & >=(2*class.durability+1) & <=eligible
	hubs:     int & >=1 & <=eligible & <=3
	copies:   int & >=(class.durability+1) & <=env.count.keepers
	fanout:   int & >=3 & <=8
	strict:   int & >3 & <7
	numbers:  >=2 & <=4
	unsigned: uint & <=2
	hex:      int & >=0x10 & <=1_00
	one:      3
	over:     300
	ne:       int & >=3 & <=8 & !=5
	dflt:     *3 | int & >=2
	empty:    int & >=(eligible+1) & <=eligible
	open:     int & >=params.one
	below:    int & <=-1
	neg:      int & >=-3 & <=2
	float:    float & >=1
	wide:     int & >=250
	unbound:  int

	type:     ("log" | "register" | "map") & class.type
	delivery: "none" | "causal"
	model:    *"eventual" | "causal"
	narrowed: ("none" | "causal" | "x") & ("causal" | "x")
	anystr:   string
	flag:     bool
	on:       true
	maybe:    *true | false
}
`

func TestIntsReadOffMatchCUE(t *testing.T) {
	ctx := cuecontext.New()
	r := &run{ctx: ctx}
	v := ctx.CompileString(paramDecls)
	read := 0
	for _, name := range []string{"replicas", "hubs", "copies", "fanout", "strict", "numbers", "unsigned", "hex",
		"one", "over", "ne", "dflt", "empty", "open", "below", "neg", "float", "wide", "unbound"} {
		pv := v.LookupPath(cue.MakePath(cue.Str("params"), cue.Str(name)))
		if _, _, ok := intInterval(pv); ok {
			read++
		}
		if got, want := r.intsIn(pv), trialInts(ctx, pv); !slices.Equal(got, want) {
			t.Errorf("%s: read off %v, CUE accepts %v", name, got, want)
		}
	}
	t.Logf("%d of 19 read off", read)
	if read < 10 {
		t.Errorf("only %d constraints were read off: the plain forms are not recognised", read)
	}
}

// Random intervals, with and without a type, compared with CUE.
func TestIntsReadOffRandom(t *testing.T) {
	ctx := cuecontext.New()
	r := &run{ctx: ctx}
	rng := rand.New(rand.NewPCG(7, 9))
	ops := []string{">=", ">", "<=", "<", "!="}
	types := []string{"int & ", "uint & ", "number & ", ""}
	for range 300 {
		expr := types[rng.IntN(len(types))]
		n := 1 + rng.IntN(3)
		for i := range n {
			if i > 0 {
				expr += " & "
			}
			expr += fmt.Sprintf("%s%d", ops[rng.IntN(len(ops))], rng.IntN(300)-20)
		}
		pv := ctx.CompileString(expr)
		if got, want := r.intsIn(pv), trialInts(ctx, pv); !slices.Equal(got, want) {
			t.Errorf("%s: read off %v, CUE accepts %v", expr, got, want)
		}
	}
}

func TestChoicesReadOffMatchCUE(t *testing.T) {
	ctx := cuecontext.New()
	r := &run{ctx: ctx}
	v := ctx.CompileString(paramDecls)
	read := 0
	for _, name := range []string{"type", "delivery", "model", "narrowed", "anystr", "flag", "on", "maybe", "one", "open"} {
		pv := v.LookupPath(cue.MakePath(cue.Str("params"), cue.Str(name)))
		vals, ok := r.choicesIn(pv)
		if !ok {
			continue
		}
		read++
		for _, val := range []any{"log", "map", "none", "causal", "eventual", "x", "", true, false} {
			if got, want := slices.Contains(vals, val), pv.Unify(ctx.Encode(val)).Err() == nil; got != want {
				t.Errorf("%s admits %v: read off %t, CUE says %t", name, val, got, want)
			}
		}
	}
	t.Logf("%d read off", read)
	if read < 3 {
		t.Errorf("only %d constraints were read off: the plain forms are not recognised", read)
	}
}

// trialInts asks CUE value by value, as the planner did before reading
// intervals off.
func trialInts(ctx *cue.Context, pv cue.Value) []int64 {
	var xs []int64
	for x := int64(0); x <= maxParamValue && len(xs) < maxIntTries; x++ {
		if pv.Unify(ctx.Encode(x)).Validate() == nil {
			xs = append(xs, x)
		} else if len(xs) > 0 {
			break
		}
	}
	return xs
}
