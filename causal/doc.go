// Package causal is the pure core of rime's causal broadcast: it decides
// when a message may be delivered so that every node delivers a message
// only after everything its sender had delivered before sending it
// (Birman, Schiper & Stephenson, Lightweight Causal and Atomic Group
// Multicast, TOCS 1991). It is shaped like etcd-io/raft's core: no
// network, no clock, no goroutines; the driver owns all I/O.
//
// # Contract
//
//  1. New(Config) makes a node; Config.Start resumes one from the
//     delivered vector it persisted.
//  2. Broadcast(payload) returns a Ready whose Send holds the new message
//     for the driver to disseminate; the node delivers its own message at
//     once (it is in Ready.Deliver).
//  3. Step(msg) hands the node a message received from the network, in
//     any order, any number of times. The Ready it returns lists the
//     messages now deliverable, in causal order (Deliver), and the
//     message itself in Send if it was new (for a gossip driver to relay;
//     a driver that sends every broadcast to every member directly sends
//     on only Send messages of its own node).
//  4. A message whose causes are missing waits in a bounded hold-back
//     buffer. When the buffer is full Step refuses the message with
//     ErrBufferFull: the node has not taken it, and the driver retries
//     later or repairs the gap by anti-entropy. A message that is
//     deliverable never needs the buffer, so the node always progresses.
//  5. Catchup(vector) tells the node that the layer above obtained the
//     effects of the messages the vector covers some other way (a CRDT's
//     anti-entropy); it stops waiting for them and delivers what that
//     unblocks.
//
// Every message carries a vector clock, Deps: for each node, how many of
// its messages the sender had delivered when it broadcast. A message m
// from s with seq n is deliverable at a node that has delivered n-1
// messages of s and, for every other node r, at least Deps[r] of r's.
//
// CheckCausal, in check.go, checks any set of delivery orders against
// the messages' causal pasts; `rime verify` and the drivers' tests run it
// over every node's deliveries.
package causal
