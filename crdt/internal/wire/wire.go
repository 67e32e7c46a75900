// Package wire holds the byte-level helpers that crdt and crdt/vv encode
// with: unsigned varints, length-prefixed byte strings and a reader that
// remembers its first error, so a decoder checks once at the end instead
// of after every field and never reads past its input.
//
// Every count a decoder reads is checked against the bytes left before
// anything is allocated for it (each item takes at least one byte), so a
// hostile length cannot make a decoder allocate more than its input's size
// over a small constant.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShort: the input ends inside a field.
var ErrShort = errors.New("truncated input")

// AppendUvarint appends x as an unsigned varint.
func AppendUvarint(b []byte, x uint64) []byte { return binary.AppendUvarint(b, x) }

// AppendBytes appends p with its length in front.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendString appends s with its length in front.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Reader reads fields from a byte slice. After the first error every read
// returns a zero value, and Err reports that first error.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Len is the number of bytes not read yet.
func (r *Reader) Len() int { return len(r.b) }

// Fail records err as the reader's error unless it already has one.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Failf records a formatted error unless the reader already has one.
func (r *Reader) Failf(format string, args ...any) { r.Fail(fmt.Errorf(format, args...)) }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = ErrShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n == 0 {
		r.err = ErrShort
		return 0
	}
	if n < 0 {
		r.err = errors.New("varint overflows 64 bits")
		return 0
	}
	if n > 1 && r.b[n-1] == 0 {
		// Padded with a zero group: one value, one encoding, so that
		// equal states always have equal bytes.
		r.err = errors.New("varint not in its shortest form")
		return 0
	}
	r.b = r.b[n:]
	return x
}

// Count reads a count of items that each take at least minSize bytes, and
// fails if the rest of the input cannot hold that many.
func (r *Reader) Count(minSize int) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(len(r.b)/minSize) {
		r.err = fmt.Errorf("count %d does not fit in the %d bytes left", n, len(r.b))
		return 0
	}
	return int(n)
}

// Bytes reads a length-prefixed byte string. The result is a copy, so it
// stays valid when the caller reuses its input buffer.
func (r *Reader) Bytes() []byte {
	n := r.Count(1)
	if r.err != nil {
		return nil
	}
	p := make([]byte, n)
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return p
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.Count(1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// End fails unless every byte has been read.
func (r *Reader) End() {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes of trailing garbage", len(r.b))
	}
}
