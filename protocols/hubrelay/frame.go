package hubrelay

import (
	"errors"
	"fmt"

	"github.com/rime-dev/rime/network"
)

// The wire format: each relay frame's payload (what the hub forwards,
// opaque to it) is
//
//	frame    = version:1 kind:1 tag:8 body
//	kind 1   datagram: body = seal(plain), under the class's datagram key
//	         plain = fromLen:1 from toLen:1 to serviceLen:1 service payload
//	kind 2   QUIC:     body = packet+, packet = len:2 (big endian) bytes
//	         QUIC packets (streams) to one peer, as many as were waiting
//	kind 3   heartbeat: body empty, from a node to itself
//
// tag names the data class's transport instance without naming the
// class to the hub (it is derived from the group secret): a node runs one
// transport per class over one relay attachment, and each takes only its
// own frames. A datagram's sender and destination are sealed with it, and
// checked against what the hub says, so the hub can neither read a
// datagram nor deliver it to, or as from, another member; QUIC packets
// are QUIC's own ciphertext (TLS 1.3 bound to the node keys).
//
// QUIC packets are batched because under load every relay frame costs
// the hub a membership check and, between replicas, a datagram: packets
// that queue while the previous frame is being sent go together, and an
// idle connection's packet goes alone at once (no timer).
//
// Hand-written rather than taken from a library: it is three fields in
// front of payloads that QUIC and the seal already protect.
const (
	version = 1

	kindDatagram  byte = 1
	kindQUIC      byte = 2
	kindHeartbeat byte = 3

	tagSize    = 8
	headerSize = 2 + tagSize

	// maxName bounds an ID or service name: its length is one byte.
	maxName = 255

	// maxBatch bounds the QUIC packets of one frame, in bytes.
	maxBatch = 64 << 10
)

// errFrame marks bytes that are not a well-formed frame.
var errFrame = errors.New("hub-relay: malformed frame")

type tag [tagSize]byte

// appendHeader starts a frame of kind for tag t.
func appendHeader(b []byte, kind byte, t tag) []byte {
	b = append(b, version, kind)
	return append(b, t[:]...)
}

// decodeFrame splits a frame; body aliases b.
func decodeFrame(b []byte) (kind byte, t tag, body []byte, err error) {
	if len(b) < headerSize {
		return 0, t, nil, fmt.Errorf("%w: %d bytes, shorter than a header", errFrame, len(b))
	}
	if b[0] != version {
		return 0, t, nil, fmt.Errorf("%w: version %d, want %d", errFrame, b[0], version)
	}
	kind = b[1]
	if kind != kindDatagram && kind != kindQUIC && kind != kindHeartbeat {
		return 0, t, nil, fmt.Errorf("%w: kind %d", errFrame, kind)
	}
	copy(t[:], b[2:headerSize])
	return kind, t, b[headerSize:], nil
}

// datagram is a datagram's sealed content.
type datagram struct {
	from, to, service string
	payload           []byte
}

func appendPlain(b []byte, d datagram) ([]byte, error) {
	for _, s := range []string{d.from, d.to, d.service} {
		if len(s) > maxName {
			return nil, fmt.Errorf("%w: name of %d bytes", errFrame, len(s))
		}
	}
	if len(d.payload) > network.MaxDatagram {
		return nil, fmt.Errorf("hub-relay: %d-byte datagram: %w", len(d.payload), network.ErrTooLarge)
	}
	for _, s := range []string{d.from, d.to, d.service} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return append(b, d.payload...), nil
}

// decodePlain parses a datagram's opened content; payload aliases b.
func decodePlain(b []byte) (datagram, error) {
	var d datagram
	for _, f := range []*string{&d.from, &d.to, &d.service} {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return datagram{}, fmt.Errorf("%w: datagram names cut short", errFrame)
		}
		*f = string(b[1 : 1+int(b[0])])
		b = b[1+int(b[0]):]
	}
	if len(b) > network.MaxDatagram {
		return datagram{}, fmt.Errorf("%w: %d-byte payload: %w", errFrame, len(b), network.ErrTooLarge)
	}
	d.payload = b
	return d, nil
}

// appendPacket adds one QUIC packet to a batch.
func appendPacket(b, pkt []byte) []byte {
	b = append(b, byte(len(pkt)>>8), byte(len(pkt)))
	return append(b, pkt...)
}

// splitPackets calls f with each packet of a batch body (aliasing it),
// and reports a malformed batch; the packets before the flaw are given.
func splitPackets(body []byte, f func(pkt []byte)) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: an empty batch of QUIC packets", errFrame)
	}
	for len(body) > 0 {
		if len(body) < 2 {
			return fmt.Errorf("%w: a QUIC packet length cut short", errFrame)
		}
		n := int(body[0])<<8 | int(body[1])
		if n == 0 || len(body)-2 < n {
			return fmt.Errorf("%w: a QUIC packet of %d bytes in %d", errFrame, n, len(body)-2)
		}
		f(body[2 : 2+n])
		body = body[2+n:]
	}
	return nil
}
