// Package policy is rime's trust policy engine: an embedded OPA that
// answers every trust decision of a group (join, invite, place, relay,
// offload, read), logs each answer for audit, and replays a log against a
// changed policy.
//
// The contract:
//
//  1. New(ctx, Config) reads the Rego v1 policies (a directory, a file
//     system, or rime's embedded defaults in package policies), compiles
//     them and prepares the query (data.rime.trust.decision) once. The
//     policy revision is a SHA-256 of the policy files' paths and text,
//     tests excluded.
//  2. Decide(ctx, Input) validates the input (an unknown action or trust
//     level is an *InputError naming the field and the values expected),
//     evaluates the prepared query, and, if a DecisionLog writer is set,
//     appends one Event to it as a JSON line: version, id, time, input,
//     result, revision. A decision that cannot be logged is not given.
//     Every error means deny.
//  3. ReadLog reads such a log back, strictly, naming the line of any
//     problem. Replay(ctx, events, engine) evaluates each logged input
//     again, as of its logged time, and reports the decisions whose allow
//     would flip (and, apart, those only reworded).
//  4. Test(ctx, dir) runs the Rego tests beside the policies with OPA's
//     tester, by `opa test` conventions (test_ rules must be true,
//     todo_test_ rules are skipped).
//
// The policy answers {"allow": bool, "reasons": [string]}. Anything else
// (undefined, a non-boolean allow) is an error rather than a guess. The
// default policy (policies/trust.rego) documents who the input's node is
// for each action and why each rule holds.
package policy
