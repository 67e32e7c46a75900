// Package memnet is an in-process network.Network with fault injection,
// for tests and `rime verify`: every layer of every node in a test cluster
// talks through it, so an injected fault reaches memberlist, dragonboat
// and rime's own protocols alike.
//
// Faults, all changeable while the cluster runs:
//
//   - Partition(groups...) cuts every link between nodes of different
//     groups; Block(from, to) cuts one direction only; Heal undoes both.
//   - SetLoss, SetDuplicate, SetReorder: probabilities applied to each
//     datagram; SetDelay: a base delay plus uniform jitter per datagram
//     (jitter alone also reorders).
//   - Crash(addr): the node vanishes at once: its ports close, its
//     streams break, datagrams to it are lost. A node restarts by
//     listening at the same address again.
//
// Streams (Dial/Accept) are reliable while they last: a partition or a
// crash breaks them, loss and duplication do not touch them (TCP hides
// those), delay applies to each write.
//
// Random choices come from one generator seeded by New, so a failing
// schedule can be replayed as far as goroutine scheduling allows. Stats
// counts what the faults did, so a test can check that they happened.
package memnet
