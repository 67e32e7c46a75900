package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/rime-dev/rime/spec"
)

// Catalogue writes one line per protocol, grouped by layer bottom to top.
func Catalogue(w io.Writer, l *spec.Loader, c *spec.Catalogue) {
	for _, layer := range l.Layers {
		first := true
		for _, p := range c.Protocols {
			if p.Layer != layer {
				continue
			}
			if first {
				fmt.Fprintf(w, "%s\n", layer)
				first = false
			}
			impl := "spec only"
			if p.Implemented {
				impl = "implemented"
			}
			fmt.Fprintf(w, "  %-22s provides %-24s %-11s %s\n", p.Name, strings.Join(p.Provides, ","), impl, p.Source)
			fmt.Fprintf(w, "  %-22s %s\n", "", p.Summary)
		}
	}
}
