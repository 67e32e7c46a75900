package crdt

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The cores are pure: the replication and broadcast drivers own the
// network, the clock and the goroutines. This keeps it so.
func TestCoresArePure(t *testing.T) {
	banned := []string{"net", "os", "time", "sync", "context", "log", "log/slog", "math/rand", "math/rand/v2", "crypto/rand"}
	for _, dir := range []string{".", "vv", "internal/wire", "../causal"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range file.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range banned {
					if p == b || strings.HasPrefix(p, b+"/") || strings.HasPrefix(p, "github.com/rime-dev/rime/") && !strings.HasPrefix(p, "github.com/rime-dev/rime/crdt") {
						t.Errorf("%s imports %s: the core must stay pure", f, p)
					}
				}
			}
		}
	}
}
