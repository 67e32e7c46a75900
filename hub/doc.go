// Package hub is rime's hub: the replicated authority on nodes, groups,
// members, invitations, each group's namespace, the placement directory
// and channel references, with a relay for nodes that cannot reach each
// other (Rusta's hub, replicated with Raft so losing one machine of three
// loses nothing).
//
// The pieces, bottom up:
//
//  1. State (state.go) is the replicated state and Apply its only
//     mutator: pure (the time is the command's, decisions are in the
//     command), so replicas applying one log hold one state, and its
//     snapshot (JSON with sorted keys) is byte-identical across them.
//
//  2. Request (request.go) is a signed request: ed25519 over a canonical,
//     length-prefixed encoding of op, signer, key, nonce, time and body.
//     Apply verifies the signature again, refuses a request outside the
//     replay window of the hub's clock (ReplayWindow) and a nonce already
//     used by the signer; nonces are forgotten only once they are stale.
//
//  3. Authorizer (authorizer.go) takes every trust decision (join,
//     invite, place; read, offload and relay are answered without the
//     log). The leader decides before proposing and the command carries
//     Input and Decision; Apply records the decision and refuses the
//     command (ErrConflict, the client retries) if the state no longer
//     gives the same Input. Builtin is the default until package policy
//     (OPA) is merged; AllowAll is for benchmarks.
//
//  4. Replica (replica.go) runs the state machine in a dragonboat shard
//     over rime's network.Network (protocols/raft's transport factory),
//     addressed by node ID; replicas find each other's addresses through
//     signed hellos and the addresses they register. The hub's own
//     replicas are the members of HubGroup: the first leader creates it
//     from the bootstrap list, a new replica joins by invitation like any
//     node, and the leader keeps the shard's voters equal to its members.
//
//  5. Client (client.go) is a node's Go API over the "hub" stream
//     service: writes go to the leader (a follower answers "not leader,
//     try X"), reads to any replica after a ReadIndex round. Resending a
//     request after a timeout is safe: the hub applies it at most once.
//
//  6. The relay (relay.go) forwards opaque, sealed frames between
//     members of a group attached to any replica, storing nothing.
//
//  7. GroupWatch (watch.go) keeps a member's view of its group fresh,
//     one read a membership round, and binds node-to-node TLS to it: its
//     Authorize admits exactly the members, with the keys the hub knows
//     for them, so a removed member is refused within a round.
//
//  8. Keys (keys.go) hands each trusted member the group's epoch keys,
//     wrapped for it alone (the hub stores only wrapped keys); a new
//     epoch, hence a new key, follows every removal.
//
// The OPA-backed Authorizer is PolicyAuthorizer (policy.go). Not yet:
// process checkpoints and fork tickets in the hub.
package hub
