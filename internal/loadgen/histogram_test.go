package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBuckets: every value falls in the bucket whose range holds it, and
// bucket widths stay within 1/subBuckets of their values.
func TestBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1 << 20, 1<<63 - 1}
	for range 10000 {
		vals = append(vals, rng.Uint64N(1<<uint(rng.IntN(63)+1)))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= buckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, buckets)
		}
		lo := bucketLow(i)
		if lo > v || (i+1 < buckets && bucketLow(i+1) <= v) {
			t.Fatalf("value %d in bucket %d [%d, %d)", v, i, lo, bucketLow(i+1))
		}
		if i+1 < buckets && lo >= subBuckets && float64(bucketLow(i+1)-lo)/float64(lo) > 1.0/subBuckets {
			t.Fatalf("bucket %d [%d, %d) is wider than 1/%d of its values", i, lo, bucketLow(i+1), subBuckets)
		}
	}
}

// TestQuantiles compares the histogram's quantiles with the exact
// nearest-rank quantiles of the same values.
func TestQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h, a, b Histogram
	var vals []time.Duration
	for i := range 50000 {
		// A long-tailed mix: most around a millisecond, some far out.
		d := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		if rng.IntN(100) == 0 {
			d *= 40
		}
		vals = append(vals, d)
		h.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(vals)
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := max(int(float64(len(vals))*q+0.999999999), 1)
		want := vals[rank-1]
		for name, hh := range map[string]*Histogram{"whole": &h, "merged": &a} {
			got := hh.Quantile(q)
			if diff := float64(got - want); diff > float64(want)/subBuckets+1 || -diff > float64(want)/subBuckets+1 {
				t.Errorf("%s: quantile %v = %v, exact %v: off by more than 1/%d", name, q, got, want, subBuckets)
			}
		}
	}
	if h.Count() != uint64(len(vals)) || a.Count() != h.Count() || h.Max() != vals[len(vals)-1] || a.Max() != h.Max() {
		t.Errorf("count %d/%d max %v/%v, want %d and %v", h.Count(), a.Count(), h.Max(), a.Max(), len(vals), vals[len(vals)-1])
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("an empty histogram should report zeros")
	}
}
