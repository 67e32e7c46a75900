// Package cli holds rime's subcommands. Each one parses its flags, calls
// the package that does the work, and renders the result; none holds
// logic of its own. Exit codes are part of the contract:
//
//	0  success (every class satisfiable, for plan)
//	1  the command failed for another reason (I/O, internal error)
//	2  the input is invalid (errors name file:line:column)
//	3  some class is unsatisfiable (plan)
package cli
