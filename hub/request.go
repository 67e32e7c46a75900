package hub

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rime-dev/rime/identity"
)

// Request is one signed request to the hub. The signature covers the
// canonical encoding of every other field (SigningBytes), so the hub
// verifies exactly the bytes the node signed and parses Body only after.
//
// Replay: Time must be within the hub's window of the leader's clock, and
// a Nonce is accepted once per signer (the replicated state remembers the
// nonces of the window), so a captured request cannot be applied again.
// Sending the same request again after a timeout is safe for the same
// reason: the second copy is refused as a replay and says whether the
// first was applied (see ErrReplay).
type Request struct {
	// Op names the operation (the Op* constants).
	Op string `json:"op"`
	// Signer is the ID of the node whose key signed the request.
	Signer string `json:"signer"`
	// Key is the signer's public key. Required by OpRegister and
	// OpHello, whose signer may not be registered yet; otherwise the hub
	// uses the key it registered for Signer.
	Key []byte `json:"key,omitempty"`
	// Nonce is random, unique per signer within the replay window.
	Nonce uint64 `json:"nonce"`
	// Time is the signer's clock, Unix nanoseconds.
	Time int64 `json:"time"`
	// Body is the operation's arguments, JSON. It travels as bytes
	// (base64 in the JSON envelope), never as a nested JSON value: the
	// signature covers these exact bytes, and re-encoding nested JSON
	// (compacting, escaping '&' and '<') would change them.
	Body []byte `json:"body,omitempty"`
	// Sig is ed25519 over SigningBytes.
	Sig []byte `json:"sig"`
}

// Operations.
const (
	OpHello       = "hello"        // replica to replica: who and where I am
	OpRegister    = "register"     // RegisterArgs
	OpCreateGroup = "create-group" // GroupArgs
	OpInvite      = "invite"       // InviteArgs
	OpAccept      = "accept"       // GroupArgs: join a group one was invited to
	OpLeave       = "leave"        // GroupArgs
	OpRemove      = "remove"       // MemberArgs (admin)
	OpPut         = "put"          // PutArgs
	OpDelete      = "delete"       // PathArgs
	OpPlace       = "place"        // PlaceArgs
	OpUnplace     = "unplace"      // PlaceArgs
	// Reads: answered by any replica after a linearizable read index.
	OpGetNode      = "get-node"     // NodeArgs
	OpGetGroup     = "get-group"    // GroupArgs
	OpGet          = "get"          // PathArgs
	OpList         = "list"         // PathArgs (Path is a prefix)
	OpPlacement    = "placement"    // PlaceArgs (Node ignored)
	OpAuthorize    = "authorize"    // AuthorizeArgs: a read/offload/relay decision
	OpDecisions    = "decisions"    // GroupArgs: the recorded decisions
	OpRelayAttach  = "relay-attach" // GroupArgs, on the relay service
	OpStatus       = "status"       // no body: the replica's view
	maxRequestSize = 1 << 20        // bytes of one encoded request
	maxValueSize   = 64 << 10       // bytes of one namespace value
	signingContext = "rime-hub-request-v1"
)

// isWrite says the op changes the replicated state, so it goes through
// the leader and the log.
func isWrite(op string) bool {
	switch op {
	case OpRegister, OpCreateGroup, OpInvite, OpAccept, OpLeave, OpRemove, OpPut, OpDelete, OpPlace, OpUnplace:
		return true
	}
	return false
}

// SigningBytes is the canonical encoding the signature covers: a context
// string (so a hub signature can never be mistaken for another protocol's)
// then each field length-prefixed (uvarint) or fixed-width big endian, in
// a fixed order. No two different requests encode alike.
func (r *Request) SigningBytes() []byte {
	var b []byte
	field := func(p []byte) {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	field([]byte(signingContext))
	field([]byte(r.Op))
	field([]byte(r.Signer))
	field(r.Key)
	b = binary.BigEndian.AppendUint64(b, r.Nonce)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	field(r.Body)
	return b
}

// digest identifies a request's signed content, for replay answers.
func (r *Request) digest() string {
	sum := sha256.Sum256(r.SigningBytes())
	return hex.EncodeToString(sum[:16])
}

// Verify checks the signature with pub and that pub is the signer's.
func (r *Request) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrBadSignature, len(pub))
	}
	if identity.IDOf(pub) != r.Signer {
		return fmt.Errorf("%w: key is %s's, not signer %s's", ErrBadSignature, identity.IDOf(pub), r.Signer)
	}
	if len(r.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, r.SigningBytes(), r.Sig) {
		return fmt.Errorf("%w: request %s from %s", ErrBadSignature, r.Op, r.Signer)
	}
	return nil
}

// NewRequest signs op with args (marshalled to JSON) as id, with a fresh
// nonce and the current time.
func NewRequest(id *identity.Identity, op string, args any, now time.Time) (Request, error) {
	r := Request{Op: op, Signer: id.ID(), Time: now.UnixNano()}
	if op == OpRegister || op == OpHello {
		r.Key = id.Public()
	}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return Request{}, fmt.Errorf("hub: encode %s: %w", op, err)
		}
		r.Body = b
	}
	var n [8]byte
	if _, err := rand.Read(n[:]); err != nil {
		return Request{}, fmt.Errorf("hub: nonce: %w", err)
	}
	r.Nonce = binary.BigEndian.Uint64(n[:])
	r.Sig = ed25519.Sign(id.Key, r.SigningBytes())
	return r, nil
}

// EncodeRequest is the wire form of a request.
func EncodeRequest(r Request) ([]byte, error) { return json.Marshal(r) }

// DecodeRequest parses a request strictly: bounded size, no unknown
// fields, one JSON object. It checks the shape, not the signature.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	if err := decodeStrict(b, maxRequestSize, &r); err != nil {
		return Request{}, fmt.Errorf("hub: request: %w", err)
	}
	if r.Op == "" || r.Signer == "" || len(r.Signer) > 64 || len(r.Op) > 32 {
		return Request{}, fmt.Errorf("hub: request: %w: op %q signer %q", ErrBadRequest, r.Op, r.Signer)
	}
	return r, nil
}

// decodeStrict decodes one JSON value of at most limit bytes into v,
// refusing unknown fields and trailing data.
func decodeStrict(b []byte, limit int, v any) error {
	if len(b) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadRequest, len(b), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", ErrBadRequest)
	}
	return nil
}

// Arguments of the operations.
type (
	// RegisterArgs describe the registering node.
	RegisterArgs struct {
		// Class is the node's class in the app (phone, cloud, hub, ...).
		Class string `json:"class"`
		// Reachability: "public" or "nat".
		Reachability string `json:"reachability"`
		// Addr is where other nodes reach it, if they can.
		Addr string `json:"addr,omitempty"`
	}
	// GroupArgs name a group.
	GroupArgs struct {
		Group string `json:"group"`
	}
	// InviteArgs invite the holder of Key to Group.
	InviteArgs struct {
		Group string `json:"group"`
		Key   []byte `json:"key"`
	}
	// MemberArgs name a member of a group.
	MemberArgs struct {
		Group string `json:"group"`
		Node  string `json:"node"`
	}
	// NodeArgs name a node.
	NodeArgs struct {
		Node string `json:"node"`
	}
	// PathArgs name a path in a group's namespace.
	PathArgs struct {
		Group string `json:"group"`
		Path  string `json:"path"`
	}
	// PutArgs set a path in a group's namespace.
	PutArgs struct {
		Group string `json:"group"`
		Path  string `json:"path"`
		Value []byte `json:"value"`
	}
	// PlaceArgs put (or take) a class of a group on a node.
	PlaceArgs struct {
		Group string `json:"group"`
		Class string `json:"class"`
		Node  string `json:"node,omitempty"`
	}
	// AuthorizeArgs ask for a decision the hub does not act on itself
	// (read, offload, relay): Node is the node it is about.
	AuthorizeArgs struct {
		Action Action `json:"action"`
		Group  string `json:"group"`
		Node   string `json:"node"`
		Class  string `json:"class,omitempty"`
	}
	// HelloArgs say where a hub replica listens.
	HelloArgs struct {
		Addr string `json:"addr"`
	}
)

// Errors the hub answers with; the client returns them wrapped, so
// errors.Is works on both sides.
var (
	ErrBadRequest   = errors.New("hub: bad request")
	ErrBadSignature = errors.New("hub: bad signature")
	ErrReplay       = errors.New("hub: replayed request")
	ErrStale        = errors.New("hub: request time outside the replay window")
	ErrDenied       = errors.New("hub: denied")
	ErrNotFound     = errors.New("hub: not found")
	ErrExists       = errors.New("hub: already exists")
	ErrNotMember    = errors.New("hub: not a member")
	ErrNotAdmin     = errors.New("hub: not an admin")
	ErrUnregistered = errors.New("hub: node not registered")
	ErrConflict     = errors.New("hub: state changed since the decision; retry")
	ErrNotLeader    = errors.New("hub: not the leader")
	ErrUnavailable  = errors.New("hub: no replica answered")
)

// codes are the errors' names on the wire.
var codes = map[string]error{
	"bad-request": ErrBadRequest, "bad-signature": ErrBadSignature, "replay": ErrReplay,
	"stale": ErrStale, "denied": ErrDenied, "not-found": ErrNotFound, "exists": ErrExists,
	"not-member": ErrNotMember, "not-admin": ErrNotAdmin, "unregistered": ErrUnregistered,
	"conflict": ErrConflict, "not-leader": ErrNotLeader, "unavailable": ErrUnavailable,
}

// codeOf is the wire name of err's sentinel, or "error".
func codeOf(err error) string {
	for c, e := range codes {
		if errors.Is(err, e) {
			return c
		}
	}
	return "error"
}

// errorOf rebuilds an error from its code and message.
func errorOf(code, msg string) error { return &Error{Code: code, Msg: msg} }
