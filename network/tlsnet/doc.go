// Package tlsnet is the real network.Network: TCP connections with mutual
// TLS 1.3, each side authenticated by its node key (package identity).
//
// Trust is by key, not by certificate authority. Both sides present a
// self-signed certificate for their ed25519 key; each side checks the
// other's certificate is signed by its own key and currently valid, turns
// the key into a node ID (identity.IDOf) and asks Config.Authorize
// whether that node may talk to it. A nil Authorize accepts any key; the
// group's member list and its OPA policy plug in there. A refusal by the
// dialling side shows in its error; a refusal by the accepting side shows
// in the dialler's error as the peer refusing this node's key, and in the
// accepting side's log with the reason.
//
// Every connection opens the same way:
//
//  1. the dialler connects over TCP and both sides run the TLS handshake,
//     each verifying the other's key as above;
//  2. the dialler sends a header: the connection's kind (a datagram
//     carrier or a stream), its own listen address, and for a stream the
//     service name;
//  3. the acceptor answers one status byte: ok, or refused when no port
//     has the stream's service open (Dial then returns network.ErrRefused);
//  4. a carrier then carries datagram frames (service, payload) one way,
//     and a stream is handed to the port's Accept, which sends the ok, so
//     Dial returns once the remote application has the stream.
//
// Datagrams. Send queues the datagram on the carrier to its destination
// and returns: one carrier (one connection and one writer goroutine) per
// destination, dialled on first use and dialled again after a failure. A
// full queue drops, a failed dial or write loses what was queued, and the
// failure is logged, never returned: datagrams are unreliable by
// contract. The receiver delivers each datagram as network.Packet whose
// From is the sender's listen address from the carrier's header (the TCP
// source port is ephemeral); From is what the authenticated sender
// claims, not something TLS proved. Datagrams to a service nobody opened,
// or to a port whose queue is full, are dropped. A carrier idle for two
// minutes closes.
//
// Streams. Dial opens a fresh connection per stream; its error wraps
// network.ErrUnreachable when the node cannot be reached (connect or
// handshake failed or timed out), ErrUnauthorized when either side
// refused the other's key, network.ErrRefused when nobody serves the
// service. A stream's RemoteAddr is the peer's listen address.
//
// Every length on the wire is bounded before anything is allocated for
// it (frame.go): names up to 255 bytes, payloads up to
// network.MaxDatagram. Close ends the listener, every carrier and stream
// and every port, and returns once the endpoint's goroutines have.
package tlsnet
