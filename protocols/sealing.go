package protocols

import (
	"context"
	"errors"
)

// End-to-end encryption of a confidential class ("encryption"): the
// class's updates leave a member sealed under the group's current epoch
// key, and every node that is not a member (an honest-but-curious relay,
// a cloud box) keeps and forwards only what was sealed. Two interfaces
// split the job:
//
//  1. a KeySource hands a node the group's epoch keys: the group moves to
//     a new epoch when a member is removed, and a removed member is never
//     given a key of an epoch after its removal (hub/keys.go distributes
//     them through the hub, wrapped for each member);
//  2. a Sealer (the e2e-encryption layer) seals and opens a class's
//     updates with those keys; the layers that keep or send the class's
//     data find it below themselves (package node places a layer that
//     provides "encryption" as low as its own requirements allow).

// KeySource gives a node the group's epoch keys. Env.Keys is nil on a
// node that is given none (a non-member).
type KeySource interface {
	// Current is the newest epoch this node holds a key of, and that key
	// (32 bytes). It waits for the first key until ctx ends; a source
	// that can never have one returns ErrNoKey.
	Current(ctx context.Context) (epoch uint64, key []byte, err error)
	// Key is the key of epoch, from what the source already holds (it
	// does not wait): ErrNoKey if this node was never given that epoch's
	// key (it was not a member then, or was removed before it).
	Key(ctx context.Context, epoch uint64) ([]byte, error)
	// Changed returns a channel closed at the next change of the keys
	// held (a rotation, or keys fetched for the first time). Take the
	// channel before reading the keys.
	Changed() <-chan struct{}
}

// Sealer ("encryption") seals and opens one class's updates. A sealed
// update carries its key's epoch in a small header, and the header, the
// app, the group and the class are authenticated with it, so a sealed
// update of one class cannot be replayed into another.
//
// Beyond the agreed Seal/Open/CanOpen, a Sealer offers Ready and
// Changed: a layer that seals inside a single loop goroutine (CRDT
// replication) waits for a key in its caller's goroutine (Ready) and
// retries what it could not open when keys arrive (Changed), instead of
// blocking its loop on the key source.
type Sealer interface {
	// Seal seals plaintext under the current epoch's key.
	Seal(ctx context.Context, plaintext []byte) ([]byte, error)
	// Open checks and decrypts what Seal made. ErrNoKey: this node holds
	// no key of the update's epoch; ErrSealed wraps every other failure
	// (malformed, forged, or another class's).
	Open(ctx context.Context, sealed []byte) ([]byte, error)
	// CanOpen reports whether this node is given keys at all (a member).
	CanOpen() bool
	// Ready waits until Seal has a key at hand (ErrNoKey at once on a
	// node that is given none).
	Ready(ctx context.Context) error
	// Changed is the key source's: closed at the next change of the keys
	// held (nil on a node given none: it never changes).
	Changed() <-chan struct{}
}

// Errors of end-to-end encryption.
var (
	// ErrNoKey: this node holds no key for what was asked (a non-member,
	// or an epoch it was not given).
	ErrNoKey = errors.New("no key of the group for this node")
	// ErrSealed: sealed bytes that do not open (malformed, forged, or
	// sealed for another class).
	ErrSealed = errors.New("sealed update does not open")
)
