// Package hubrelay is rime's "hub-relay" transport: for nodes behind NAT
// (`reachable: "nat"`), which cannot reach each other, it offers the
// layers above a network.Endpoint whose every byte goes through the hub's
// relay (package hub, relay.go) over the node's own outbound connection
// to a hub replica, as TURN does (RFC 8656). The relay forwards opaque
// frames between attached members of a group and stores nothing; it
// drops a frame when a destination's queue is full, as a network drops a
// datagram. The hub never sees a key: everything this package sends is
// ciphertext to it.
//
// # The endpoint
//
// The endpoint is what Transport.Endpoint returns; swim, epidemic
// broadcast and the rest use it as they use tcp-mtls's:
//
//   - Addresses are node IDs, written as IPv6 addresses with port 1 (see
//     Addr) because memberlist accepts only "ip:port". Send and Dial take
//     either form.
//   - A datagram (Send) is one relay frame, sealed (AES-256-GCM, package
//     seal) under a key derived from the group secret, with its sender,
//     destination and service inside the seal; the receiver checks the
//     sealed sender and destination against what the hub says, so the hub
//     cannot forge, read or reroute one.
//   - Streams (Dial, Port.Accept) are QUIC streams (quic-go, pinned at
//     v0.65.0 in go.mod), multiplexed on one QUIC connection per pair of
//     nodes, over a net.PacketConn whose packets are relay frames. QUIC
//     gives the reliability and order the relay does not (it drops and,
//     across a replica failover, loses frames) and TLS 1.3, bound to the
//     nodes' ed25519 identity keys as tlsnet binds it: each side checks
//     that the other's self-signed certificate holds the key of the node
//     the relay names as the sender, or the node it dialled. A stream
//     starts with a header naming its service, and Dial returns once the
//     remote port accepted it (network.ErrRefused if nobody serves the
//     service there), as with tlsnet.
//
// A node runs one transport per data class, and the hub keeps one relay
// session per node and group: the relayer (hub.Client.Relayer) shares the
// session among the classes' transports and gives each every frame; a
// frame header carries a tag derived from the group secret and the class,
// so each transport takes its own without telling the hub the class.
// The wire format is in frame.go.
//
// # Failures
//
// The transport keeps itself attached. When the replica it is attached
// to fails (or the session breaks), the link ends and the transport
// attaches again through the same relayer, which starts at another
// replica, backing off from Config.ReattachMin to ReattachMax while no
// replica takes it. A replica that vanishes without closing the
// connection is found by a heartbeat: when nothing came through the
// relay for Config.Heartbeat, the node sends itself a frame through it,
// and after HeartbeatTimeout of silence it leaves the attachment. Frames in flight are lost: datagrams are simply
// gone, and QUIC retransmits stream data, so streams ride out a failover
// shorter than Config.IdleTimeout; longer, their reads and writes fail
// with an error (memberlist and the other users of streams retry). A
// member removed from the group is cut off by the hub at its next frame
// and refused when it attaches again (Stats.LastError says so); it keeps
// retrying, since it may be invited back.
//
// # Lifecycle
//
//  1. New (or NewModule(Config)): an instance; the default registry holds
//     NewModule(DefaultConfig()).
//  2. Provision(env): env.Relayer (the node's hub client), the node's ID
//     and key, the group and class; the datagram key and frame tag are
//     derived from the group secret. The plan's `relays` parameter is
//     checked (1 to 3) but changes nothing: the transport attaches to one
//     replica at a time and fails over among all the hub client knows.
//  3. Validate: the Config, a relayer, the key matching the node ID.
//  4. Start(ctx): listen for QUIC connections and attach, returning once
//     attached or failing after Config.AttachTimeout.
//  5. Close: close the QUIC connections (peers are told), the ports and
//     the attachment. Unlike tcp-mtls, the transport owns its endpoint.
//
// Not done: a node reachable both directly and through the relay uses
// only the relay here (no upgrade to a direct path, as ICE would); the
// hub's replicas forward frames between each other as datagrams, so a
// datagram near network.MaxDatagram may be dropped between replicas.
package hubrelay
