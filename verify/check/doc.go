// Package check holds the history checkers behind `rime verify`: pure
// functions from a recorded History to a Result that says whether a
// promise held and, when it did not, names the operations that show it.
//
// A History is what a run recorded (Jepsen's model): every client
// operation with its client, node, kind (write, append, read, sync-read,
// delivered), key, unique value, invocation and completion times in ns,
// and outcome (ok; fail: definitely not applied; info: unknown, may take
// effect at any time after its call); plus the partitions and crashes the
// nemesis injected, the nodes lost for good, and each replica's final
// state after heal and quiescence. It round-trips through JSON (Encode,
// Decode), and every checker refuses a history that does not Validate.
//
// The checkers, one per promise of the app spec:
//
//  1. Linearizable: porcupine, with a log model (state: how many appends
//     took effect, positions fixed by the longest read) or a register
//     model, keys partitioned; a timeout is Unknown, never OK; porcupine's
//     HTML visualization of a violation goes to LinearizableConfig.HTMLDir.
//  2. Sequential: one order per log key respecting each client's program
//     order, decided without search.
//  3. Causal: no read or delivery stream shows an update before its causes
//     (declared Deps, session order, reads-from, transitively), and reads
//     include their client's causal past.
//  4. Convergence: every replica's final state equal; the diverging ones
//     with a smallest difference.
//  5. Durability: every acknowledged update in every surviving replica's
//     final state, given the lost nodes and the promised k.
//  6. Availability: operations during a partition succeeded where the
//     promise (always, majority) says they must.
//
// Results list at most MaxViolations violations each. The package does no
// I/O except the visualization, starts no goroutines itself (porcupine
// runs one per key) and reads no clock except porcupine's timeout.
package check
