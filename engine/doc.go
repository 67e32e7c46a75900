// Package engine is rime's planner: app requirements x protocol catalogue
// -> a Plan with a proof.
//
// For each data class (and each computation) the planner:
//
//  1. evaluates the theorems (spec/cue/theorems.cue) on the class in its
//     environment; a "forbid" theorem makes the class unsatisfiable and is
//     reported with its citation, before any search; a "demand" theorem
//     adds a capability the stack must provide;
//  2. chains backward from the goal in spec/cue/goals.cue: a protocol that
//     provides the goal's capability is a candidate if the environment is
//     an instance of its `assumes` (decided by CUE unification on concrete
//     facts; a failure names the assumption's and the environment's
//     positions), if some values of its parameters satisfy their CUE
//     constraints, and if its guarantees meet the demand along the
//     dimensions in spec/cue/models.cue; its `requires` become sub-goals;
//  3. keeps the cheapest complete stack by the cost model (a dynamic
//     program over capabilities in dependency order, so each capability is
//     provided once and shared by every layer that needs it);
//  4. evaluates the caveat theorems on the chosen stack and writes the
//     proof: which fact discharged each assumption, which guarantee met
//     each requirement, why each parameter has its value;
//  5. for an unsatisfiable class, weakens one requirement at a time along
//     its dimension (the lattice, the availability chain, durability) and
//     reports the nearest weakenings that plan.
//
// The engine is pure: no I/O, no goroutines, no clock, no package state.
// It reads protocol specs only, never protocol code, so plugins are
// planned exactly like built-ins. The same inputs give byte-identical
// JSON. A Planner is not safe for concurrent use (CUE values are not).
package engine
