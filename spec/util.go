package spec

import (
	"fmt"
	"strings"
)

func fmtMsg(format string, args []any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

func joinPath(p []string) string { return strings.Join(p, ".") }
