// Command rime composes distributed protocols from declared requirements.
// See internal/cli for its subcommands.
package main

import (
	"os"

	"github.com/rime-dev/rime/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
