// Package verify is the home of `rime verify`: it runs a planned stack
// under the faults its environment admits and checks every guarantee the
// plan promised, in the manner of Jepsen but driven by the app's own CUE.
//
// The tree is split by job, so that each part can be tested alone:
//
//  1. nemesis/: the faults an environment admits (partitions, crashes,
//     restarts with the disk kept or lost, loss, duplication, reordering,
//     latency, churn) and seeded, reproducible schedules of them;
//  2. sim/: a plan's nodes in this process on memnet, as a nemesis
//     target; workload/: clients that drive a class's channels as
//     applications do and record what they saw as a check.History: a
//     total order's (checkpointed channel) or an available class's
//     (convergent channel, every CRDT type; see convergent.go here for
//     how its run differs: k nodes lost for good for durability k);
//  3. check/: pure history checkers, one per promise (linearizable,
//     sequential, causal, convergence, durability, availability), each
//     returning a check.Result that names the operations of every
//     violation; check/checktest generates simulated histories for tests
//     and benchmarks;
//  4. this package: Run verifies one class over N schedules: a fresh
//     cluster per schedule, the workload under the schedule's faults, a
//     healed settling period, every replica's final state, then every
//     check the class's guarantees call for (or the --check models);
//  5. the CLI front end, `rime verify` (internal/cli).
//
// check/ has no I/O except writing porcupine's HTML visualization where
// the caller asks for it, so a history recorded once can be checked again
// later from JSON.
//
// netns/ is the second runtime (rime verify --netns): each node a `rime
// node` process in its own network namespace, partitions made by cutting
// links; RunNamespaces drives it. It injects link cuts only so far: the
// other faults are reported as not injected there.
package verify
