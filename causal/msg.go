package causal

import (
	"encoding/binary"
	"fmt"

	"github.com/rime-dev/rime/crdt/vv"
)

// A message on the wire, version 1:
//
//	version byte (1) | sender (uvarint length, bytes) | seq (uvarint) |
//	deps: uvarint count, then per node other than the sender, by name:
//	name, count (uvarint, > 0) | payload (uvarint length, bytes)
//
// The sender's own entry is implied (seq-1). Decoders accept only this
// canonical form, so a message has one encoding.

const msgVersion = 1

// MaxPayload bounds a payload a decoder accepts.
const MaxPayload = 64 << 20

// AppendBinary appends m's encoding to b.
func (m Msg) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Payload) > MaxPayload {
		return nil, fmt.Errorf("causal: payload of %d bytes, the limit is %d", len(m.Payload), MaxPayload)
	}
	b = append(b, msgVersion)
	b = appendString(b, m.ID.Replica)
	b = binary.AppendUvarint(b, m.ID.Seq)
	var names []string
	for _, r := range m.Deps.Replicas() {
		if r != m.ID.Replica {
			names = append(names, r)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, r := range names {
		b = appendString(b, r)
		b = binary.AppendUvarint(b, m.Deps[r])
	}
	b = binary.AppendUvarint(b, uint64(len(m.Payload)))
	return append(b, m.Payload...), nil
}

// MarshalBinary is m's encoding.
func (m Msg) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader reads fields and keeps the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 || (n > 1 && r.b[n-1] == 0) {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) bytes(limit uint64) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) || n > limit {
		r.fail("length %d beyond the input or the limit", n)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// DecodeMsg reads a message written by Msg.MarshalBinary. The payload is
// a copy.
func DecodeMsg(b []byte) (Msg, error) {
	if len(b) == 0 {
		return Msg{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if b[0] != msgVersion {
		return Msg{}, fmt.Errorf("%w: version %d, this build reads %d", ErrInvalid, b[0], msgVersion)
	}
	r := &reader{b: b[1:]}
	var m Msg
	m.ID.Replica = string(r.bytes(1 << 16))
	m.ID.Seq = r.uvarint()
	if r.err == nil && (m.ID.Replica == "" || m.ID.Seq == 0 || m.ID.Seq > vv.MaxSeq) {
		r.fail("message id %v", m.ID)
	}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/2) {
		r.fail("%d dependencies in %d bytes", n, len(r.b))
	}
	m.Deps = vv.VV{}
	prev := ""
	for i := uint64(0); i < n && r.err == nil; i++ {
		name := string(r.bytes(1 << 16))
		k := r.uvarint()
		switch {
		case r.err != nil:
		case i > 0 && name <= prev:
			r.fail("dependencies not sorted at %q", name)
		case name == m.ID.Replica || k == 0:
			r.fail("dependency %s:%d", name, k)
		}
		prev = name
		m.Deps[name] = k
	}
	if m.ID.Seq > 1 {
		m.Deps[m.ID.Replica] = m.ID.Seq - 1
	}
	p := r.bytes(MaxPayload)
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes of trailing garbage", len(r.b))
	}
	if r.err != nil {
		return Msg{}, r.err
	}
	m.Payload = append([]byte(nil), p...)
	return m, nil
}
