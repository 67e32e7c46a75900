// Package crdt holds rime's convergent replicated data types, one for each
// convergent `type` of the CUE surface: Log ("log"), Register
// ("register"), Map ("map"), Set ("set"), Counter ("counter") and Text
// ("text"). They are delta-state CRDTs (Almeida, Shoker & Baquero, Delta
// state replicated data types, JPDC 2018): every operation yields a delta,
// a small state of the same type, and deltas and states merge alike.
//
// The package is pure: no I/O, no goroutines, no clock. The caller passes
// who acts and when (Stamp); replication, persistence and networking
// belong to the layers built on it (protocols/crdtreplication and the
// convergent channel).
//
// # Contract
//
// Every type implements State. A replication layer:
//
//  1. applies a local operation with Apply(Stamp, Op), which changes the
//     replica and returns the delta to disseminate (MarshalBinary);
//  2. merges what peers send (Decode, then Merge): deltas may arrive
//     lost, duplicated or reordered, since Merge is commutative,
//     associative and idempotent;
//  3. runs anti-entropy by contexts: a peer sends its Context (a
//     vv.Dots, MarshalBinary), the replica answers DeltaSince(context),
//     which holds exactly the events the peer lacks, so its size grows
//     with what the peer missed and not with the history (a phone back
//     from a day offline receives that day's updates, not the document);
//  4. persists the replica's MarshalBinary and restores it with Decode;
//  5. calls Compact with the meet of every replica's Context().VV() once
//     known, which drops the removal records every replica has seen.
//
// Clients submit operations as bytes through a channel: MarshalOp and
// UnmarshalOp encode them.
//
// # Causality
//
// Each event (an operation) has a dot: its replica and a seq numbering
// that replica's events from 1. A state's context is the set of dots whose
// effects it holds, kept as ranges (package vv), so it costs a few bytes
// per replica. Timestamps are hybrid: Apply takes the caller's clock but
// raises it past every timestamp the state has seen, so last-writer-wins
// and the log's order never put an operation before one its replica had
// seen.
//
// # Types
//
//   - Log: an append-only set of opaque updates, listed by (timestamp,
//     replica, seq). It keeps everything; truncation is the checkpointed
//     channel's business.
//   - Register: last-writer-wins by (timestamp, replica, seq).
//   - Map: keys to last-writer-wins registers; a delete removes the writes
//     its replica had seen, and a concurrent write survives it.
//   - Set: observed-remove, add-wins, without tombstones: an element holds
//     the dots of its live adds only.
//   - Counter: a PN-counter, one entry per replica.
//   - Text: RGA, one element per character with tombstones; see Text for
//     why RGA.
//
// Map, Set and Text keep a record of each removal until Compact learns
// that every replica has seen it: without the record, a peer that had
// seen a removed element could not learn of its removal from a delta (see
// removals.go).
//
// # Encoding
//
// States, deltas and ops have a versioned binary encoding (version 1):
// varints, replica names written once per message in a table, sorted
// contents so that equal states have equal bytes. Decode checks a state's
// invariants and refuses anything else with ErrEncoding; it is fuzzed
// (FuzzDecode, FuzzUnmarshalOp).
//
// # Why not a library
//
// The Go CRDT libraries we know of are either op-based without
// anti-entropy by context, or bindings to Automerge or Yjs through cgo or
// WebAssembly with their own sync protocols and document formats. rime
// needs one causality model (dots) shared by every type and by causal
// broadcast, deltas whose size follows the missing events, and a pure
// core the replication layer drives; the types above are small enough to
// own.
package crdt
