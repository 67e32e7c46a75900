// Package spec loads what rime reasons about: the CUE schema of the
// user-facing surface (apps, node classes, data classes), the consistency
// lattice and guarantee dimensions, the theorems, and protocol specs. It
// returns typed Go values that keep their CUE values and source positions,
// so the engine can reason in CUE and still point the user at a line.
//
// The schema lives in cue/*.cue, embedded, as one CUE package. Use:
//
//  1. NewLoader compiles the schema once; everything loaded through one
//     Loader shares one *cue.Context (values from two contexts never mix).
//  2. LoadApp / LoadAppSource read an app, close it against #App and
//     return an *App, or diag.Diagnostics naming file:line:column.
//  3. LoadProtocol reads one protocol spec file; Catalogue collects them.
//
// A Loader is not safe for concurrent use (neither is a cue.Context).
// Nothing here starts goroutines, reads the clock or touches the network;
// only LoadApp reads files, and only those it is given.
package spec
