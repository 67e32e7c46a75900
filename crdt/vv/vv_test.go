package vv

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// model is a plain set of dots the range representation is checked against.
type model map[Dot]bool

func (m model) dots() *Dots {
	d := &Dots{}
	for x := range m {
		d.Add(x)
	}
	return d
}

func randModel(rng *rand.Rand) model {
	m := model{}
	for range rng.IntN(40) {
		m[Dot{string(rune('a' + rng.IntN(3))), 1 + rng.Uint64N(20)}] = true
	}
	return m
}

func checkCanonical(t *testing.T, d *Dots) {
	t.Helper()
	for _, r := range d.Replicas() {
		rs := d.Ranges(r)
		if len(rs) == 0 {
			t.Fatalf("%v: replica %q with no ranges", d, r)
		}
		for i, x := range rs {
			if x.Lo == 0 || x.Lo > x.Hi {
				t.Fatalf("%v: bad range %v", d, x)
			}
			if i > 0 && x.Lo <= rs[i-1].Hi+1 {
				t.Fatalf("%v: ranges %v and %v overlap or touch", d, rs[i-1], x)
			}
		}
	}
}

func sameAs(t *testing.T, what string, d *Dots, m model) {
	t.Helper()
	checkCanonical(t, d)
	if d.Len() != uint64(len(m)) {
		t.Fatalf("%s: %v has %d dots, model %d", what, d, d.Len(), len(m))
	}
	for x := range m {
		if !d.Contains(x) {
			t.Fatalf("%s: %v lacks %v", what, d, x)
		}
	}
}

func TestDotsAgainstModel(t *testing.T) {
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 1))
		a, b := randModel(rng), randModel(rng)
		da, db := a.dots(), b.dots()
		sameAs(t, "add", da, a)

		union := model{}
		for x := range a {
			union[x] = true
		}
		for x := range b {
			union[x] = true
		}
		u := da.Clone()
		u.Merge(db)
		sameAs(t, "merge", u, union)

		diff, inter := model{}, model{}
		for x := range a {
			if b[x] {
				inter[x] = true
			} else {
				diff[x] = true
			}
		}
		sameAs(t, "missing", da.Missing(db), diff)
		sameAs(t, "meet", da.Meet(db), inter)

		want := combine(len(union) > len(a), len(union) > len(b))
		if got := da.Compare(db); got != want {
			t.Fatalf("seed %d: compare %v %v = %v, want %v", seed, da, db, got, want)
		}
		for r, n := range da.VV() {
			for s := uint64(1); s <= n; s++ {
				if !a[Dot{r, s}] {
					t.Fatalf("VV of %v claims %s:%d", da, r, s)
				}
			}
			if a[Dot{r, n + 1}] {
				t.Fatalf("VV of %v stops short at %s:%d", da, r, n)
			}
		}
		enc, _ := da.MarshalBinary()
		var back Dots
		if err := back.UnmarshalBinary(enc); err != nil || !back.Equal(da) {
			t.Fatalf("round trip of %v: %v, %v", da, &back, err)
		}
		enc2, _ := back.MarshalBinary()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding of %v is not canonical", da)
		}
	}
}

func TestAddRangeMergesNeighbours(t *testing.T) {
	d := &Dots{}
	d.AddRange("a", 5, 6)
	d.AddRange("a", 1, 2)
	d.AddRange("a", 9, 9)
	d.AddRange("a", 3, 4) // joins 1-2 and 5-6
	if got := d.String(); got != "{a:1-6,9}" {
		t.Fatalf("got %s", got)
	}
	d.AddRange("a", 2, 20)
	if got := d.String(); got != "{a:1-20}" {
		t.Fatalf("got %s", got)
	}
	if d.Max("a") != 20 || d.VV()["a"] != 20 {
		t.Fatalf("max/vv of %v", d)
	}
}

func TestVV(t *testing.T) {
	a := VV{"a": 3, "b": 1}
	b := VV{"a": 2, "b": 4}
	if a.Compare(b) != Concurrent || a.Compare(a.Clone()) != Equal {
		t.Fatal("compare")
	}
	if (VV{"a": 1}).Compare(a) != Before || a.Compare(VV{"a": 1}) != After {
		t.Fatal("compare before/after")
	}
	if got := a.Missing(b).String(); got != "{a:3}" {
		t.Fatalf("missing %s", got)
	}
	if got := a.Meet(b).String(); got != "{a:2 b:1}" {
		t.Fatalf("meet %s", got)
	}
	m := a.Clone()
	m.Merge(b)
	if got := m.String(); got != "{a:3 b:4}" {
		t.Fatalf("merge %s", got)
	}
	enc, _ := m.MarshalBinary()
	back, err := DecodeVV(enc)
	if err != nil || !back.Equal(m) {
		t.Fatalf("round trip %v %v", back, err)
	}
	if !FromVV(m).Equal(FromVV(back)) {
		t.Fatal("FromVV")
	}
}

func TestParseDot(t *testing.T) {
	d, err := ParseDot("node:a:12")
	if err != nil || d != (Dot{"node:a", 12}) {
		t.Fatalf("%v %v", d, err)
	}
	for _, bad := range []string{"a", "a:0", ":1", "a:x"} {
		if _, err := ParseDot(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}

func FuzzDecodeDots(f *testing.F) {
	d := &Dots{}
	d.AddRange("a", 1, 10)
	d.AddRange("a", 12, 12)
	d.AddRange("b", 3, 4)
	enc, _ := d.MarshalBinary()
	f.Add(enc)
	venc, _ := VV{"a": 3}.MarshalBinary()
	f.Add(venc)
	f.Add([]byte{1, 'D', 1, 1, '0', 1, 0xff, 0, '0'}) // a padded varint: refused
	f.Add([]byte{1, 'D', 1, 1, 'a', 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Dots
		if err := d.UnmarshalBinary(b); err == nil {
			checkCanonical(t, &d)
			again, _ := d.MarshalBinary()
			if !bytes.Equal(again, b) {
				t.Fatalf("accepted a non-canonical encoding %x (canonical %x)", b, again)
			}
		}
		if v, err := DecodeVV(b); err == nil {
			again, _ := v.MarshalBinary()
			if !bytes.Equal(again, b) {
				t.Fatalf("accepted a non-canonical vv %x (canonical %x)", b, again)
			}
		}
	})
}
