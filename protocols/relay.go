package protocols

import "context"

// Relayer reaches the other members of a group through the hub's relay,
// for nodes that cannot reach each other directly (behind NAT). It is
// what the hub-relay transport is provisioned with (Env.Relayer); the
// hub's client provides one (hub.Client.Relayer), and this package
// defines the interface so that protocols need not import package hub
// (which imports protocols/raft, which imports this package).
type Relayer interface {
	// Relay attaches this node to the relay for group and returns the
	// link. Relay may be called again for the same group while links are
	// open (a node runs one transport per data class): the links then
	// share one attachment, and each of them receives every frame sent to
	// this node in group, so the holders must tell their own frames apart.
	// A link ends when the attachment does (the hub replica fails, or the
	// node is no longer a member); the holder calls Relay again to
	// reattach.
	Relay(ctx context.Context, group string) (RelayLink, error)
}

// RelayLink is one attachment to the relay. Delivery is best effort, like
// a datagram's: a frame may be lost (a full queue, a replica failing,
// an end that is not attached), but it is never altered, and the sender
// named by Recv is the one the hub authenticated.
type RelayLink interface {
	// Send sends payload to the member whose node ID is to. A nil error
	// means only that the frame left. An error means the link is broken.
	Send(to string, payload []byte) error
	// Recv waits for the next frame and the ID of the member that sent
	// it. The payload is shared with the other links of the attachment:
	// read it, do not modify it. An error other than ctx's means the link
	// ended.
	Recv(ctx context.Context) (from string, payload []byte, err error)
	// Close ends this link; the attachment ends with its last link.
	Close() error
}
