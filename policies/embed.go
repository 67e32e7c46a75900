// Package policies holds rime's default trust policies, written in Rego v1,
// and embeds them so the binary carries them: trust.rego decides every
// trust decision of a group (package rime.trust, query
// data.rime.trust.decision), and trust_test.rego tests it with opa test
// conventions. Package policy loads them from FS when no other directory
// is given; `rime policy test` runs the tests.
package policies

import "embed"

//go:embed *.rego
var fsys embed.FS

// FS returns the embedded default policies and their tests, at the root of
// the returned file system.
func FS() embed.FS { return fsys }
