// Package diag carries problems to the user with their source positions.
//
// A Diagnostic is one problem: a severity, a stable code that tests and
// scripts may match on, a one-line summary, an optional detail, and the
// positions in the user's files (CUE positions survive all the way here).
// Diagnostics collects them, so a command reports every problem in a file
// at once instead of stopping at the first, and implements error so it can
// travel through ordinary error returns.
package diag
