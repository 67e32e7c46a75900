// Package vv holds the causality bookkeeping that rime's convergent data
// types and causal broadcast share: dots, version vectors and dot sets.
//
//   - A Dot names one event: the Seq-th event of replica Replica (Seq
//     counts from 1).
//   - A VV (version vector, or vector clock) says, for each replica, how
//     many of its events have been seen, all of them in order: VV{"a": 3}
//     covers a:1, a:2 and a:3. Causal broadcast delivers in order, so a
//     VV is all it needs.
//   - Dots is a set of dots with gaps allowed, kept as sorted disjoint
//     ranges per replica. A delta-state CRDT's causal context is a Dots:
//     deltas can arrive out of order, so a replica may have seen a:5
//     without a:4. In the common case each replica's dots form one range
//     and a Dots costs a few bytes per replica.
//
// Missing is the basis of anti-entropy: a replica with dots D, told that a
// peer has dots P, sends the events of D.Missing(P), and the size of that
// answer grows with what the peer lacks, not with the history.
//
// The package is pure: no I/O, no clock, no goroutines. Values are not
// safe for concurrent mutation.
package vv
