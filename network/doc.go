// Package network is the one seam between rime and the wire.
//
// Every layer that talks to other nodes (memberlist's gossip, dragonboat's
// Raft messages, rime's own protocols) reaches them only through an
// Endpoint, so a test or `rime verify` can swap real sockets for the
// in-process network of package memnet and inject partitions, loss,
// delay, duplication, reordering and crashes that reach every layer.
//
// An Endpoint offers two services, both addressed by a node's address and
// a service name (so many layers share one node):
//
//  1. datagrams (Send, Port.Packets): unreliable, unordered, possibly
//     duplicated, like UDP; what SWIM probes and Raft messages need;
//  2. streams (Dial, Port.Accept): reliable and ordered while they last,
//     broken by a partition or a crash; what memberlist's state sync and
//     dragonboat's snapshot transfer need.
//
// Implementations: memnet (in process, with faults) and tlsnet (TCP with
// mutual TLS bound to node keys).
package network
