package spec

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
)

func fmtMsg(format string, args []any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

func joinPath(p []string) string { return strings.Join(p, ".") }

// Path is cue.ParsePath for the paths rime writes itself, a.b.c or
// #Def.b, built without running CUE's parser, which on every call also
// reads the CUE_EXPERIMENT settings: planning looks paths up tens of
// thousands of times. Anything else goes to cue.ParsePath.
func Path(s string) cue.Path {
	parts := strings.Split(s, ".")
	sels := make([]cue.Selector, len(parts))
	for i, p := range parts {
		def := i == 0 && strings.HasPrefix(p, "#")
		if !isIdent(strings.TrimPrefix(p, "#")) || (!def && strings.HasPrefix(p, "#")) {
			return cue.ParsePath(s)
		}
		if def {
			sels[i] = cue.Def(p)
		} else {
			sels[i] = cue.Str(p)
		}
	}
	return cue.MakePath(sels...)
}

// isIdent reports whether s is a plain identifier that CUE's path syntax
// reads as a regular field: not a keyword, not hidden (_x).
func isIdent(s string) bool {
	if s == "" || strings.HasPrefix(s, "_") {
		return false
	}
	switch s {
	case "true", "false", "null", "for", "in", "if", "let", "import", "package", "func":
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}
