// Package verify is the home of `rime verify`: it runs a planned stack
// under the faults its environment admits and checks every guarantee the
// plan promised, in the manner of Jepsen but driven by the app's own CUE.
//
// The tree is split by job, so that each part can be tested alone:
//
//  1. a nemesis derived from the environment (partitions, crashes, loss,
//     duplication, reordering, latency, churn), seeded and reproducible
//     (not built yet);
//  2. workloads that drive each class through the real client API and
//     record what every client saw as a check.History (not built yet);
//  3. check/: pure history checkers, one per promise (linearizable,
//     sequential, causal, convergence, durability, availability), each
//     returning a check.Result that names the operations of every
//     violation; check/checktest generates simulated histories for tests
//     and benchmarks;
//  4. the CLI front end in cmd/rime (not built yet).
//
// Only check/ exists so far. It has no I/O except writing porcupine's HTML
// visualization where the caller asks for it, so the runtimes above can
// record a history once and check it, or check it again later from JSON.
package verify
