// Package crdtreplication is the "crdt-replication" layer: every node
// keeps its own replica of a class's convergent state (a crdt.State of
// the class's `type`, the plan's `type` parameter), applies local
// operations at once, disseminates their deltas through the Broadcast
// below, merges what peers send, and repairs gaps by anti-entropy. It
// offers protocols.Replica ("replica", "local-replica") to the
// convergent channel above.
//
// # One loop
//
// A single goroutine owns the replica. It handles events in batches:
// local operations (Apply), broadcast deliveries, frames from peers on
// the service "crdt/<class>", membership changes and two tickers. After
// each batch it commits, in this order:
//
//  1. persist: one write-ahead log record and one fsync for the whole
//     batch (persist.go), so a burst of updates costs one disk flush;
//  2. broadcast the batch's own deltas (only once they are on disk, so
//     an update never leaves a node that could forget it);
//  3. answer the Apply calls: the operation is on this device's disk,
//     queued for the others even if the device is offline;
//  4. send the frames the batch produced (answers to pulls,
//     acknowledgements, pushes to placement targets), each carrying
//     this node's context, which is now on disk;
//  5. settle: updates now on `copies` nodes are acknowledged, and the
//     visible part of the replica grows (see below).
//
// # Anti-entropy by contexts
//
// Every Config.AntiEntropyInterval a node sends one random alive member
// its context (a vv.Dots: which events its replica holds). The member
// answers with DeltaSince(context): exactly the events the asker lacks,
// so a node back from a day offline receives that day's updates, not
// the history (TestOfflineNodeCatchesUpWithWhatItMissed measures it).
// A node has one pull in flight at a time, since a second one would
// bring the same updates twice.
//
// The answer also carries the answering node's broadcast vector: the
// broadcast messages whose effects its replica holds. Merging the
// answer gives the asker those effects, so it tells a causal broadcast
// below (protocols.CatchUp) to stop waiting for those messages; the
// broadcast resends nothing itself (DelegateRepair), and the two repairs
// never both send what a node missed.
//
// # Causal mode
//
// With the plan's `delivery: "causal"`, deltas are merged in the
// broadcast's causal order, and anti-entropy answers, being differences
// of causally closed states, keep each replica causally closed; local
// operations apply on top of everything merged. The visible stream is
// therefore causal. Two rules keep the broadcast's own order in step
// with merges made outside it:
//
//   - every state sent to a peer (an answer, or a placement push, which
//     in causal mode is computed from what the peer acknowledged, one at
//     a time per peer) carries the broadcast vector of the sender's
//     state, and the receiver counts those messages as delivered
//     (CatchUp), so its later broadcasts name them as causes;
//   - those states are computed after the batch's own broadcasts, whose
//     numbers (protocols.Numbered) are counted in the vector at once.
//
// Known gap: an update persisted by a node that then crashes before
// broadcasting it reaches the others by anti-entropy only, and its order
// relative to updates made by nodes that saw it only that way is not
// enforced.
//
// # Durability by placement
//
// An update is acknowledged once `copies` nodes (the plan's copies,
// durability+1) keep it on disk: this node, and peers whose context,
// heard in an acknowledgement, a pull or an answer, contains it. Every
// frame carries the sender's persisted context, so acknowledgements are
// a by-product of anti-entropy; in addition, a node pushes each new
// update at once to the placement targets that lack it, asking them to
// acknowledge once it is on their disk, and pushes again after
// Config.AckInterval without enough acknowledgements.
//
// Placement targets are ranked (placement.go): node classes listed in
// Config.PreferClasses first (the app's classes with connectivity
// "always", such as relays and cloud nodes: the plan does not yet hand
// node-class facts to the layer, so the operator names them), then by
// the fraction of time membership has seen each member alive since this
// node first saw it, so nodes that are more often online keep the
// copies, then by ID.
//
// # What a channel sees
//
// Merges and local updates are numbered on each node in the order they
// happen (Entry.Seq base+1, base+2, ...; the base grows at each start,
// kept in the store, so no Seq is reused after a restart). An update becomes visible (Snapshot,
// Follow) once every update before it is visible and, if it is this
// node's own, acknowledged; so a channel's stream is a prefix of the
// merge order, causal when the replica is, and an own update's arrival
// in the stream means it is durable. While an own update waits for its
// copies (a node offline, or in a partition with fewer than copies
// nodes), later updates wait behind it. After a restart the replica's
// whole state, including own updates not yet acknowledged, is visible
// at once; the loop keeps pushing them.
//
// # Sealed mode
//
// With a protocols.Sealer below (e2e-encryption, for a confidential
// class), the replicated state is a log of sealed deltas, so every disk
// and every frame holds only ciphertext, and a node given no keys still
// replicates, keeps and acknowledges the class; members open the log
// into the class's state in memory. See sealed.go.
//
// # Persistence
//
// With a store below, the replica survives crashes: a snapshot in the
// store plus a write-ahead log (persist.go); the replica ID is the node
// ID, kept in the snapshot. Without one (a class with durability 0 may
// have no store) the replica lives in memory, under a new replica ID at
// each start, so that a restarted node never numbers new events with
// seqs it used before. Removal records of map, set and text are never
// compacted yet (crdt's Compact needs the meet of every replica's
// context, which this layer does not compute yet).
package crdtreplication
