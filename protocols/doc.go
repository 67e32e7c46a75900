// Package protocols holds rime's built-in protocols, one directory each,
// with each protocol's spec.cue beside its Go code (a directory may hold
// only the spec while the implementation does not exist yet; its spec
// says `implemented: false` and `rime up` refuses plans that use it).
//
// The planner never imports this package's Go code: it reads the specs,
// which SpecFS exposes, so a plugin's spec is planned exactly like a
// built-in's.
package protocols
