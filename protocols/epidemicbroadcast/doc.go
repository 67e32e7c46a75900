// Package epidemicbroadcast is rime's "epidemic-broadcast" layer: every
// message broadcast by a member reaches every member that stays
// reachable long enough, once, in no particular order (Demers et al.,
// Epidemic Algorithms for Replicated Database Maintenance, PODC 1987:
// rumour mongering for speed, anti-entropy for completeness). It offers
// protocols.Broadcast over the Transport below, with peers from the
// Membership below.
//
// # Protocol
//
// A message is named by (origin, epoch, seq): the broadcasting node's
// ID, its incarnation (the wall clock at Start, so a restarted node never
// reuses a name) and a sequence number 1, 2, 3, ... within the
// incarnation.
//
//  1. Push. A node that has a message for the first time (its own
//     broadcast, or a push from a peer) delivers it and pushes it to
//     Fanout alive members chosen at random (the plan's `fanout`
//     parameter). Push alone misses each node with probability about
//     e^-Fanout.
//  2. Anti-entropy. Every DigestTicks ticks a node sends one random peer
//     its digest: per (origin, epoch) the contiguous watermark (every seq
//     up to it seen) and the few seqs seen above it. The peer answers with
//     the retained messages the digest lacks (oldest first, one datagram
//     of at most MaxBatchBytes, not pushed on), and, if the digest shows
//     something it lacks itself, with its own digest, which the first node
//     answers the same way. So two nodes that can talk repair each other
//     both ways in one round trip, and a partition's two sides, or a node
//     back from a crash, converge after the heal.
//  3. Exactly once. A message is delivered only if its seq is not yet
//     seen in its stream (the watermark, or a bit in the window above
//     it), so duplicated, reordered or repaired copies change nothing. A restarted node is a new incarnation with empty
//     state: it delivers, once, every message still retained anywhere,
//     including the ones its previous incarnation delivered (the layers
//     above restart with it).
//
// The protocol itself is Core, a pure state machine (Step, Tick,
// Broadcast, each returning a Ready: what to send, what to deliver); the
// Broadcaster drives it from one goroutine, owning the port, the ticker
// and the membership subscription.
//
// # Authentication
//
// Every datagram is sealed with AES-256-GCM under
// env.DeriveKey("epidemic-broadcast/aead", 32), a key derived from the
// group's secret, with the service name ("broadcast/" + the data class)
// as additional data. A node without the group's secret can neither read
// nor inject messages, and one class's messages are never taken for
// another's. Members are trusted not to lie about a message's origin: a
// member that did could suppress another's messages (this layer, like
// the swim membership under it, assumes no Byzantine member).
//
// # Memory bound
//
// With Config c, one node holds at most:
//
//   - retained messages: c.MaxRetained of them and c.MaxRetainedBytes
//     counted bytes (payload + origin + 96 each), in a queue whose backing
//     array holds about four times the live entries at most (or 256);
//   - seen state: c.MaxOrigins origins, each with c.MaxEpochs streams of
//     a few words plus, while messages arrived out of order, a bitmap of
//     c.Window bits;
//   - deliveries not yet read: c.DeliveryBuffer of at most c.MaxPayload
//     bytes each;
//   - in flight: the datagram being handled and the ones of one Ready
//     (a digest reply of at most c.MaxBatchBytes, pushes of one message).
//
// With DefaultConfig that is about 16 MiB of retained payload, under
// 3 MiB of seen state and at most 64 MiB of unread deliveries, however
// many messages pass through (TestSimMemoryBound100k checks the bounds at
// every step of 100,000 messages, and that the live heap does not grow).
//
// What the bounds cost, and why none of it can deliver a message twice:
//
//   - Every message carries its age, the ticks it has spent on the nodes
//     it passed through; nodes evict it past RetainTicks and refuse it on
//     arrival past that (Stats.Expired). So a message lives at most about
//     RetainTicks in the whole group, however often it is repaired, as
//     long as nodes tick at the same rate (a suspended node does not age
//     what it holds).
//   - A message evicted everywhere before a node fetched it is lost to
//     that node; once the node's window moves past it, it is counted in
//     Stats.Skipped.
//   - An origin is forgotten only after more than 2*RetainTicks without a
//     message accepted from it, when all its messages are expired
//     everywhere; while MaxOrigins origins are tracked and none is that
//     silent, messages of a new origin are refused (Stats.Refused) and
//     fetched again later.
//   - Of one origin's incarnations only the MaxEpochs newest are tracked;
//     messages of older ones are refused (Stats.Stale).
//
// # Lifecycle
//
//  1. New (or NewModule(Config)): an instance with its tuning; the
//     default registry holds NewModule(DefaultConfig()).
//  2. Provision(env): the Transport and Membership below, the `fanout`
//     parameter, the key; no I/O.
//  3. Validate: the Config (with the plan's fanout) and the node ID.
//  4. Start(ctx): open the service "broadcast/<class>" on the transport's
//     endpoint, subscribe to membership, start the driver.
//  5. Close: stop the driver, close the service and Deliveries.
//     Idempotent.
//
// The application must keep reading Deliveries: while DeliveryBuffer
// deliveries are unread the driver stops taking datagrams (the network
// drops them and anti-entropy repairs them later) and Broadcast blocks.
package epidemicbroadcast
