package causalbroadcast

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rime-dev/rime/causal"
	"github.com/rime-dev/rime/crdt/vv"
)

// A datagram, once opened, is one frame:
//
//	kind byte | body
//
//	kindMsgs:   uvarint count, then per message uvarint length and
//	            causal.Msg's encoding (in the order to step them)
//	kindDigest: the asker's delivered vector (vv.VV's encoding): "send me
//	            what I have not delivered"
//	kindSkip:   a vector: "I no longer keep your missing messages of
//	            these senders up to these seqs; skip them"
const (
	kindMsgs   byte = 1
	kindDigest byte = 2
	kindSkip   byte = 3
)

// maxBatch bounds the messages one frame carries, so a decoder never
// allocates for a count read off the wire beyond what the bytes hold.
const maxBatch = 1 << 16

// frame is a decoded datagram.
type frame struct {
	kind byte
	msgs []causal.Msg
	vec  vv.VV
}

var errFrame = errors.New("causal-broadcast: malformed frame")

func encodeMsgs(ms []causal.Msg) ([]byte, error) {
	b := []byte{kindMsgs}
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		e, err := m.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b, nil
}

func encodeVec(kind byte, v vv.VV) []byte {
	b, _ := v.AppendBinary([]byte{kind})
	return b
}

// decodeFrame reads what encodeMsgs and encodeVec wrote.
func decodeFrame(b []byte) (frame, error) {
	if len(b) == 0 {
		return frame{}, fmt.Errorf("%w: empty", errFrame)
	}
	f := frame{kind: b[0]}
	body := b[1:]
	switch f.kind {
	case kindMsgs:
		n, k := binary.Uvarint(body)
		if k <= 0 || n == 0 || n > maxBatch || n > uint64(len(body)) {
			return frame{}, fmt.Errorf("%w: message count", errFrame)
		}
		body = body[k:]
		for i := uint64(0); i < n; i++ {
			l, k := binary.Uvarint(body)
			if k <= 0 || l > uint64(len(body)-k) {
				return frame{}, fmt.Errorf("%w: message %d length", errFrame, i)
			}
			m, err := causal.DecodeMsg(body[k : k+int(l)])
			if err != nil {
				return frame{}, fmt.Errorf("%w: message %d: %w", errFrame, i, err)
			}
			f.msgs = append(f.msgs, m)
			body = body[k+int(l):]
		}
		if len(body) != 0 {
			return frame{}, fmt.Errorf("%w: %d trailing bytes", errFrame, len(body))
		}
	case kindDigest, kindSkip:
		v, err := vv.DecodeVV(body)
		if err != nil {
			return frame{}, fmt.Errorf("%w: vector: %w", errFrame, err)
		}
		f.vec = v
	default:
		return frame{}, fmt.Errorf("%w: kind %d", errFrame, f.kind)
	}
	return f, nil
}
