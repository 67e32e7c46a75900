package epidemicbroadcast

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rime-dev/rime/network"
)

// Kind is what a message carries and what the receiver does with it.
type Kind uint8

const (
	// KindPush carries messages pushed by gossip: a node that has one for
	// the first time pushes it on.
	KindPush Kind = 1
	// KindRepair carries messages a digest showed the receiver lacks; it
	// keeps them but does not push them on, since they are old news to
	// everyone else.
	KindRepair Kind = 2
	// KindDigest says what the sender has seen; the receiver answers with
	// a repair and, if it lacks something, with a KindDigestReply.
	KindDigest Kind = 3
	// KindDigestReply is a digest that is answered with a repair only, so
	// two nodes never bounce digests forever.
	KindDigestReply Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindPush:
		return "push"
	case KindRepair:
		return "repair"
	case KindDigest:
		return "digest"
	case KindDigestReply:
		return "digestreply"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Data is one broadcast message. (Origin, Epoch, Seq) names it: Epoch is
// the origin's incarnation (new at each Start, increasing), Seq numbers
// its broadcasts 1, 2, 3, ... within the incarnation. Age is how many
// ticks it has spent on the nodes it passed through since it was
// broadcast; past RetainTicks it is expired everywhere.
type Data struct {
	Origin  string
	Epoch   uint64
	Seq     uint64
	Age     uint64
	Payload []byte
}

// StreamDigest is what a node has seen of one origin's incarnation: every
// Seq up to Watermark, and the ones listed in Above (ascending, each above
// Watermark; at most maxDigestAbove of them, the lowest).
type StreamDigest struct {
	Origin    string
	Epoch     uint64
	Watermark uint64
	Above     []uint64
}

// Message is one datagram's content.
type Message struct {
	Kind   Kind
	Data   []Data         // KindPush, KindRepair
	Digest []StreamDigest // KindDigest, KindDigestReply
}

const (
	wireVersion = 1
	// maxOriginLen bounds a node ID on the wire (IDs are short hashes).
	maxOriginLen = 255
	// maxDataOverhead bounds the encoding of one Data beyond its payload,
	// plus the frame header.
	maxDataOverhead = 3 + maxOriginLen + 4*binary.MaxVarintLen64 + 2 + binary.MaxVarintLen64
	// maxDigestAbove is how many out-of-order Seqs a digest lists per
	// stream; past that the other side may send a few messages twice.
	maxDigestAbove = 32
	// minDataLen and minDigestLen are the smallest encodings of one item,
	// so a count read off the wire can be checked against what is left.
	minDataLen   = 6
	minDigestLen = 5
	// maxDatagram is what the network carries in one datagram.
	maxDatagram = network.MaxDatagram
)

// Errors of the decoder.
var (
	errShort   = errors.New("truncated")
	errVersion = errors.New("unknown version")
)

// encode appends m's encoding to dst.
func encode(dst []byte, m Message) []byte {
	dst = append(dst, wireVersion, byte(m.Kind))
	switch m.Kind {
	case KindPush, KindRepair:
		dst = binary.AppendUvarint(dst, uint64(len(m.Data)))
		for _, d := range m.Data {
			dst = appendString(dst, d.Origin)
			dst = binary.AppendUvarint(dst, d.Epoch)
			dst = binary.AppendUvarint(dst, d.Seq)
			dst = binary.AppendUvarint(dst, d.Age)
			dst = binary.AppendUvarint(dst, uint64(len(d.Payload)))
			dst = append(dst, d.Payload...)
		}
	case KindDigest, KindDigestReply:
		dst = binary.AppendUvarint(dst, uint64(len(m.Digest)))
		for _, s := range m.Digest {
			dst = appendString(dst, s.Origin)
			dst = binary.AppendUvarint(dst, s.Epoch)
			dst = binary.AppendUvarint(dst, s.Watermark)
			dst = binary.AppendUvarint(dst, uint64(len(s.Above)))
			prev := s.Watermark
			for _, a := range s.Above {
				dst = binary.AppendUvarint(dst, a-prev)
				prev = a
			}
		}
	}
	return dst
}

// dataLen is the encoded size of d within a message.
func dataLen(d Data) int {
	return 1 + len(d.Origin) + uvarintLen(d.Epoch) + uvarintLen(d.Seq) + uvarintLen(d.Age) +
		uvarintLen(uint64(len(d.Payload))) + len(d.Payload)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

// decode parses one message. It never panics and never allocates more
// than a small multiple of len(b); payloads are copied, so retaining one
// does not pin the whole datagram.
func decode(b []byte) (Message, error) {
	r := reader{b: b}
	v, k := r.byte(), Kind(r.byte())
	if r.err != nil {
		return Message{}, fmt.Errorf("epidemic-broadcast: decode: header: %w", r.err)
	}
	if v != wireVersion {
		return Message{}, fmt.Errorf("epidemic-broadcast: decode: %w %d", errVersion, v)
	}
	m := Message{Kind: k}
	switch k {
	case KindPush, KindRepair:
		n := r.count(minDataLen)
		m.Data = make([]Data, 0, n)
		for range n {
			d := Data{Origin: r.origin(), Epoch: r.uvarint(), Seq: r.uvarint(), Age: r.uvarint()}
			d.Payload = r.bytes()
			if r.err == nil && (d.Epoch == 0 || d.Seq == 0) {
				r.err = errors.New("epoch and seq must be positive")
			}
			if r.err != nil {
				break
			}
			m.Data = append(m.Data, d)
		}
	case KindDigest, KindDigestReply:
		n := r.count(minDigestLen)
		m.Digest = make([]StreamDigest, 0, n)
		for range n {
			s := StreamDigest{Origin: r.origin(), Epoch: r.uvarint(), Watermark: r.uvarint()}
			na := r.count(1)
			if r.err == nil && s.Epoch == 0 {
				r.err = errors.New("epoch must be positive")
			}
			if r.err == nil && na > 0 {
				s.Above = make([]uint64, 0, na)
			}
			prev := s.Watermark
			for range na {
				delta := r.uvarint()
				if r.err == nil && (delta == 0 || delta > math.MaxUint64-prev) {
					r.err = errors.New("digest: seqs not strictly increasing")
				}
				if r.err != nil {
					break
				}
				prev += delta
				s.Above = append(s.Above, prev)
			}
			if r.err != nil {
				break
			}
			m.Digest = append(m.Digest, s)
		}
	default:
		return Message{}, fmt.Errorf("epidemic-broadcast: decode: unknown kind %d", uint8(k))
	}
	if r.err == nil && len(r.b) != r.off {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	if r.err != nil {
		return Message{}, fmt.Errorf("epidemic-broadcast: decode %v: %w", k, r.err)
	}
	return m, nil
}

// reader reads a message, remembering the first error; after it every
// read returns a zero value.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	if n != uvarintLen(v) {
		// One encoding per message, so a datagram cannot be varied
		// without changing what it says.
		r.err = errors.New("overlong varint")
		return 0
	}
	r.off += n
	return v
}

// count reads an item count and checks that what is left could hold
// that many items of at least min bytes each.
func (r *reader) count(min int) int {
	v := r.uvarint()
	if r.err != nil {
		return 0
	}
	if v > uint64((len(r.b)-r.off)/min) {
		r.err = fmt.Errorf("count %d: more than the %d bytes left can hold", v, len(r.b)-r.off)
		return 0
	}
	return int(v)
}

func (r *reader) origin() string {
	n := int(r.byte())
	if r.err != nil {
		return ""
	}
	if n == 0 {
		r.err = errors.New("empty origin")
		return ""
	}
	if n > len(r.b)-r.off {
		r.err = errShort
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *reader) bytes() []byte {
	v := r.uvarint()
	if r.err != nil {
		return nil
	}
	if v > uint64(len(r.b)-r.off) {
		r.err = errShort
		return nil
	}
	p := make([]byte, v)
	copy(p, r.b[r.off:])
	r.off += int(v)
	return p
}

// sealOverhead is what sealing adds: the nonce and GCM's tag.
const sealOverhead = 12 + 16

// sealer authenticates and encrypts datagrams with the group's key
// (AES-256-GCM, a random nonce per datagram) and binds the service name
// (which names the data class) as additional data, so one class's
// messages are never taken for another's.
type sealer struct {
	aead cipher.AEAD
	ad   []byte
}

func newSealer(key []byte, service string) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("epidemic-broadcast: key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("epidemic-broadcast: key: %w", err)
	}
	return &sealer{aead: aead, ad: []byte("rime/" + service + "/v1")}, nil
}

// seal returns nonce || ciphertext of plain.
func (s *sealer) seal(plain []byte) []byte {
	out := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(out) // never fails (crypto/rand)
	return s.aead.Seal(out, out, plain, s.ad)
}

// open checks and decrypts a sealed datagram.
func (s *sealer) open(b []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(b) < ns+s.aead.Overhead() {
		return nil, errors.New("epidemic-broadcast: open: datagram too short")
	}
	plain, err := s.aead.Open(nil, b[:ns], b[ns:], s.ad)
	if err != nil {
		return nil, fmt.Errorf("epidemic-broadcast: open: not sealed with this group's key for this class: %w", err)
	}
	return plain, nil
}
