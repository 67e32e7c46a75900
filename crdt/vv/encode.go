package vv

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/rime-dev/rime/crdt/internal/wire"
)

func uitoa(x uint64) string { return strconv.FormatUint(x, 10) }

// Encoding. A Dots or a VV on its own (an anti-entropy request carries the
// requester's Dots) is:
//
//	version byte (1) | kind byte ('D' dots, 'V' vv) | uvarint replicas |
//	per replica, sorted: string name | ranges
//
// where ranges are a uvarint count and then, per range, the gap since the
// previous range's end (Lo - prevHi - 1 with prevHi = 0 at first) and
// Hi - Lo, as uvarints. A VV is written as one range 1..n per replica.
// Small numbers stay small, so a replica seen without gaps costs its name
// and about four bytes. Decoders accept only the canonical form: sorted
// distinct names, non-adjacent ranges.

const encVersion = 1

// ErrEncoding: bytes that are not a valid encoding.
var ErrEncoding = errors.New("vv: invalid encoding")

// AppendRanges appends the encoding of a sorted range list (see above).
// Encoders of larger structures name the replica their own way and call
// this for its dots.
func AppendRanges(b []byte, rs []Range) []byte {
	b = wire.AppendUvarint(b, uint64(len(rs)))
	var prev uint64
	for _, x := range rs {
		b = wire.AppendUvarint(b, x.Lo-prev-1)
		b = wire.AppendUvarint(b, x.Hi-x.Lo)
		prev = x.Hi
	}
	return b
}

// ReadRanges reads what AppendRanges wrote, refusing anything but sorted,
// disjoint, non-adjacent ranges of positive seqs.
func ReadRanges(r *wire.Reader) []Range {
	n := r.Count(2)
	if r.Err() != nil || n == 0 {
		return nil
	}
	rs := make([]Range, 0, n)
	var prev uint64
	for i := 0; i < n; i++ {
		gap, span := r.Uvarint(), r.Uvarint()
		if r.Err() != nil {
			return nil
		}
		if i > 0 && gap == 0 {
			r.Fail(fmt.Errorf("%w: adjacent ranges", ErrEncoding))
			return nil
		}
		lo := prev + gap + 1
		hi := lo + span
		if lo <= prev || hi < lo || hi > MaxSeq { // wrapped around 2^64, or close
			r.Fail(fmt.Errorf("%w: seq beyond %d", ErrEncoding, uint64(MaxSeq)))
			return nil
		}
		rs = append(rs, Range{lo, hi})
		prev = hi
	}
	return rs
}

// SetRanges replaces replica r's dots by rs, which must be sorted,
// disjoint and non-adjacent (as ReadRanges returns them). Decoders use it.
func (d *Dots) SetRanges(r string, rs []Range) {
	if len(rs) == 0 {
		if d.m != nil {
			delete(d.m, r)
		}
		return
	}
	if d.m == nil {
		d.m = map[string][]Range{}
	}
	d.m[r] = rs
}

// AppendBinary appends d's encoding to b.
func (d *Dots) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, encVersion, 'D')
	rs := d.Replicas()
	b = wire.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = wire.AppendString(b, r)
		b = AppendRanges(b, d.m[r])
	}
	return b, nil
}

// MarshalBinary is d's encoding.
func (d *Dots) MarshalBinary() ([]byte, error) { return d.AppendBinary(nil) }

// UnmarshalBinary replaces d by the set encoded in b.
func (d *Dots) UnmarshalBinary(b []byte) error {
	out, err := decode(b, 'D')
	if err != nil {
		return err
	}
	*d = *out
	return nil
}

// AppendBinary appends v's encoding to b.
func (v VV) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, encVersion, 'V')
	rs := v.Replicas()
	b = wire.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = wire.AppendString(b, r)
		b = AppendRanges(b, []Range{{1, v[r]}})
	}
	return b, nil
}

// MarshalBinary is v's encoding.
func (v VV) MarshalBinary() ([]byte, error) { return v.AppendBinary(nil) }

// DecodeVV reads a VV written by VV.MarshalBinary.
func DecodeVV(b []byte) (VV, error) {
	d, err := decode(b, 'V')
	if err != nil {
		return nil, err
	}
	v := VV{}
	for r, rs := range d.m {
		if len(rs) != 1 || rs[0].Lo != 1 {
			return nil, fmt.Errorf("%w: version vector entry %q has gaps", ErrEncoding, r)
		}
		v[r] = rs[0].Hi
	}
	return v, nil
}

func decode(b []byte, kind byte) (*Dots, error) {
	r := wire.NewReader(b)
	if ver := r.Byte(); r.Err() == nil && ver != encVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrEncoding, ver, encVersion)
	}
	if k := r.Byte(); r.Err() == nil && k != kind {
		return nil, fmt.Errorf("%w: kind %q, want %q", ErrEncoding, k, kind)
	}
	n := r.Count(3)
	d := &Dots{}
	prev := ""
	for i := 0; i < n && r.Err() == nil; i++ {
		name := r.String()
		if r.Err() == nil && i > 0 && name <= prev {
			r.Fail(fmt.Errorf("%w: replicas not sorted or repeated at %q", ErrEncoding, name))
		}
		prev = name
		rs := ReadRanges(r)
		if r.Err() == nil && len(rs) == 0 {
			r.Fail(fmt.Errorf("%w: replica %q without dots", ErrEncoding, name))
		}
		d.SetRanges(name, rs)
	}
	r.End()
	if err := r.Err(); err != nil {
		if errors.Is(err, ErrEncoding) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrEncoding, err)
	}
	return d, nil
}
