// Package identity is a node's long-lived identity: one ed25519 key pair,
// kept in the node's state directory, from which everything else that
// names or authenticates the node is derived.
//
// The contract:
//
//  1. LoadOrCreate(dir) reads dir/node.key (PEM "PRIVATE KEY", PKCS#8,
//     ed25519). On a node's first start the file does not exist, and a
//     new key is written atomically (temp file, fsync, rename, fsync of
//     the directory) with mode 0600, so a crash never leaves a half key.
//     A file that exists but does not parse is an error that names it and
//     says what to do; it is never overwritten, since replacing a key
//     silently would change the node's identity under its group.
//  2. ID() names the node: "n" followed by the lowercase, unpadded base32
//     form of the first 10 bytes of SHA-256 of the public key (16
//     characters). IDOf computes the same name from a public key alone,
//     which is how a peer's key seen on the wire becomes a member ID.
//  3. Certificate() is a self-signed X.509 certificate for the key, for
//     mutual TLS (package network/tlsnet). Peers do not trust it through
//     a CA: they check its self-signature, take its public key, and decide
//     by the key's ID whether the node may take part.
//
// One directory belongs to one node process: two processes creating a
// key in the same empty directory at once would each believe in their
// own key, and the last rename would win.
package identity
