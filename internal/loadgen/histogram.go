package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets: each power of two
// of nanoseconds is split into subBuckets linear buckets, so a quantile
// is exact to within 1/subBuckets (under 1.6%) at any scale, in a fixed
// few kilobytes however long the run. The zero value is empty and ready.
// A Histogram is not safe for concurrent use: give each client its own
// and Merge them.
type Histogram struct {
	counts [buckets]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	subBits    = 6
	subBuckets = 1 << subBits
	// Values below subBuckets ns fall in the first, linear, group; each
	// further group covers one power of two up to 2^63 ns.
	buckets = (64 - subBits + 1) * subBuckets
)

// bucketOf maps a non-negative value to its bucket.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1: the group
	return e*subBuckets + int(v>>(e-1)) - subBuckets
}

// bucketLow is the smallest value of bucket i, so bucketOf(bucketLow(i)) == i.
func bucketLow(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i / subBuckets
	return uint64(i%subBuckets+subBuckets) << (e - 1)
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.sum += d
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the exact mean (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Max is the exact largest value (0 when empty).
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile is the value at or below which a fraction q of the recorded
// values lie (the nearest-rank definition), reported as the middle of its
// bucket and clamped to the exact minimum and maximum. q is clamped to
// [0, 1]; an empty histogram gives 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if math.IsNaN(q) {
		q = 0.5
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo := bucketLow(i)
			hi := lo
			if i+1 < buckets {
				hi = bucketLow(i+1) - 1
			}
			v := time.Duration(lo + (hi-lo)/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
