// Package e2eencryption is the "e2e-encryption" layer: it offers
// protocols.Sealer ("encryption") to the layers above it in a
// confidential class's stack, so that a class's updates leave a member
// only sealed, and nodes that are not members (honest-but-curious
// relays and cloud boxes that still host replicas) keep and forward
// ciphertext only.
//
// # Keys
//
// The layer holds no key of its own: it seals with the group's epoch
// keys from env.Keys (a protocols.KeySource; hub/keys.go distributes
// them through the hub). For each epoch it derives the class's key with
// HKDF-SHA-256 (secret: the epoch key; salt: "<app>/<group>"; info:
// "e2e-encryption/<class>"), so two classes never share a key and a
// class's key says nothing of another's. A node given no keys
// (env.Keys nil) is a non-member: Seal, Open and Ready fail with
// protocols.ErrNoKey and CanOpen is false.
//
// # Sealed update
//
//	version byte (1) | epoch (uvarint) | nonce (24 bytes) | ciphertext and tag
//
// sealed with XChaCha20-Poly1305 (RFC 8439's AEAD with the extended
// nonce, so random nonces are safe for any number of updates under one
// key). The associated data is a label, the app, the group and the
// class (each length prefixed) followed by the header (version and
// epoch): a sealed update of one class cannot be opened as another's,
// and its epoch cannot be changed without the tag failing.
//
// # Rotation
//
// Seal uses the newest epoch the key source holds, so once a member
// learns the key of the epoch after a removal, what it writes can be
// read only by the members of that epoch. Open takes the epoch from the
// header and asks the key source for that epoch's key: members keep the
// keys of older epochs to read the history.
//
// # Why not protocols/seal
//
// protocols/seal seals a layer's datagrams under one key derived from the
// group secret with a fixed associated data; here the key changes with
// the epoch, the epoch travels in the header and is authenticated, and
// updates are kept for ever (a 24-byte random nonce rather than GCM's
// 12), so the layer builds its AEAD directly on
// golang.org/x/crypto/chacha20poly1305.
package e2eencryption
