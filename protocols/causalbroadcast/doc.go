// Package causalbroadcast is the "causal-broadcast" layer: the driver of
// the pure causal core (package causal) over the node's Transport, with
// the group's view from the Membership below. Every member delivers each
// message at most once and only after every message its sender had
// delivered before sending it (Birman, Schiper & Stephenson, TOCS 1991).
//
// # How a message travels
//
//  1. Broadcast hands the payload to the core, which numbers it, stamps
//     it with the sender's delivered vector and delivers it locally.
//  2. The driver pushes it to Config.Fanout random alive members (the
//     plan's `fanout`) as a datagram on the service "causal/<class>".
//  3. A member that sees a message for the first time (the core puts it
//     in Ready.Send) relays it to Fanout random members, so a message
//     reaches everyone in O(log n) rounds of gossip; duplicates are
//     dropped by the core.
//  4. Messages whose causes have not arrived wait in the core's bounded
//     hold-back buffer; the driver hands what the core delivers to the
//     layer above through Deliveries, in the core's order.
//  5. Every Config.AntiEntropyInterval the driver sends its delivered
//     vector to one random alive member, which answers with the
//     messages it retains that the asker has not delivered, in a causal
//     order (by the sum of their vectors). So messages lost to a
//     partition arrive after it heals. A member keeps the last
//     Config.RetainMessages messages (and at most Config.RetainBytes);
//     for a sender whose older messages it no longer keeps, it says so,
//     and the asker skips them (causal.Node.Catchup): they are never
//     delivered there. A layer with its own state anti-entropy takes
//     this repair over (protocols.CatchUp): crdt-replication does, and
//     then the driver resends nothing and skips what the layer above
//     reports it holds.
//
// # Identity and restarts
//
// A node broadcasts as "<node ID>.<incarnation>", a random incarnation
// per Start, so a node that restarts never reuses a message number; the
// vectors grow by one entry per restart of a node. The driver keeps no
// disk state: after a restart it delivers again what peers resend, and
// a layer above must tolerate duplicates across restarts (CRDT merges
// do).
//
// # Security
//
// Every datagram is sealed with AES-256-GCM under
// env.DeriveKey("causal-broadcast/<class>", 32), the service name as
// authenticated data, so a node without the group's secret can neither
// read nor inject messages, and one class's messages are never taken
// for another's.
package causalbroadcast
