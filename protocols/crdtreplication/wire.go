package crdtreplication

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rime-dev/rime/crdt/vv"
)

// Frames on the service "crdt/<class>", sealed like the broadcast's
// (protocols/seal), version 1:
//
//	version byte (1) | kind byte | body
//
//	kindPull:  the sender's persisted context (vv.Dots): "send me what I
//	           lack"; always answered with a kindState with fReply.
//	kindState: flags byte | broadcast vector (vv.VV: the broadcast
//	           messages whose effects the sender's state holds) | the
//	           sender's persisted context (vv.Dots) | delta (crdt
//	           encoding; empty when there is nothing to send).
//	kindAck:   the sender's persisted context.
//
// Every frame carries the sender's persisted context: that is how a
// node learns which of its updates a peer keeps (acknowledgements), and
// what to send it.
//
// A broadcast payload is: version byte (1) | delta (crdt encoding).
const (
	wireVersion byte = 1

	kindPull  byte = 1
	kindState byte = 2
	kindAck   byte = 3

	// fReply: this state answers the receiver's pull.
	fReply byte = 1
	// fAck: the receiver should acknowledge once it has persisted it.
	fAck byte = 2
)

var errFrame = errors.New("crdt-replication: malformed frame")

// frame is a decoded frame.
type frame struct {
	kind  byte
	flags byte
	bvec  vv.VV
	ctx   *vv.Dots
	delta []byte
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func encodeFrame(f frame) []byte {
	b := []byte{wireVersion, f.kind}
	ctx, _ := f.ctx.MarshalBinary()
	switch f.kind {
	case kindPull, kindAck:
		return append(b, ctx...)
	}
	b = append(b, f.flags)
	bv, _ := f.bvec.MarshalBinary()
	b = appendBytes(b, bv)
	b = appendBytes(b, ctx)
	return append(b, f.delta...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes() []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.err = fmt.Errorf("%w: length", errFrame)
		return nil
	}
	p := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return p
}

func decodeFrame(b []byte) (frame, error) {
	if len(b) < 2 {
		return frame{}, fmt.Errorf("%w: %d bytes", errFrame, len(b))
	}
	if b[0] != wireVersion {
		return frame{}, fmt.Errorf("%w: version %d, this build reads %d", errFrame, b[0], wireVersion)
	}
	f := frame{kind: b[1], ctx: &vv.Dots{}}
	body := b[2:]
	switch f.kind {
	case kindPull, kindAck:
		if err := f.ctx.UnmarshalBinary(body); err != nil {
			return frame{}, fmt.Errorf("%w: context: %w", errFrame, err)
		}
		return f, nil
	case kindState:
	default:
		return frame{}, fmt.Errorf("%w: kind %d", errFrame, f.kind)
	}
	if len(body) < 1 {
		return frame{}, fmt.Errorf("%w: no flags", errFrame)
	}
	f.flags = body[0]
	if f.flags&^(fReply|fAck) != 0 {
		return frame{}, fmt.Errorf("%w: flags %#x", errFrame, f.flags)
	}
	r := &reader{b: body[1:]}
	bv, ctx := r.bytes(), r.bytes()
	if r.err != nil {
		return frame{}, r.err
	}
	var err error
	if f.bvec, err = vv.DecodeVV(bv); err != nil {
		return frame{}, fmt.Errorf("%w: broadcast vector: %w", errFrame, err)
	}
	if err := f.ctx.UnmarshalBinary(ctx); err != nil {
		return frame{}, fmt.Errorf("%w: context: %w", errFrame, err)
	}
	f.delta = r.b
	return f, nil
}

func encodePayload(delta []byte) []byte { return append([]byte{wireVersion}, delta...) }

func decodePayload(p []byte) ([]byte, error) {
	if len(p) < 2 || p[0] != wireVersion {
		return nil, fmt.Errorf("%w: broadcast payload", errFrame)
	}
	return p[1:], nil
}
