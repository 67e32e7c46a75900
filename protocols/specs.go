package protocols

import (
	"embed"
	"io/fs"
)

//go:embed */spec.cue
var specFS embed.FS

// SpecPrefix is how built-in spec files are named in positions, relative
// to the repository root.
const SpecPrefix = "protocols"

// SpecFS returns the built-in protocol specs as <dir>/spec.cue.
func SpecFS() fs.FS { return specFS }
