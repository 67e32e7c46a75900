// Package localcluster starts N rime nodes in this process on loopback,
// over real TCP with mutual TLS (tlsnet), each admitting only the keys of
// the cluster's own nodes. It is what `rime up` and `rime bench` deploy
// and what the channel benchmark under bench/ measures, so the three run
// the same code.
//
// Use it in order:
//
//  1. New creates (or loads, from DataDir) every node's identity, so each
//     node knows from the start exactly which peers to admit;
//  2. Start starts the first node, which bootstraps the plan's shards,
//     then the others at once, joining the first;
//  3. Ready waits until a class's log has its replicas and a leader;
//  4. Close stops the nodes, last first.
package localcluster
