package engine_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rime-dev/rime"

// The engine is pure (see doc.go): it reads protocol specs, never protocol
// code, and does no I/O.
//
// cuelang.org/go reaches os (and, through its module loader and
// registry client, packages such as net/http) transitively, so a blanket
// transitive ban on net, os/exec or os would fail for reasons outside the
// engine. The rules are therefore:
//   - engine's own non-test files import none of os, os/exec, net, net/...;
//   - no package of this module that engine depends on, including engine
//     itself, imports net, net/... or os/exec directly;
//   - engine depends, transitively, on no rime node, hub or protocols package.
func TestEngineImports(t *testing.T) {
	// Direct imports of engine's non-test files.
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range af.Imports {
			p, _ := strconv.Unquote(is.Path.Value)
			if p == "os" || p == "os/exec" || p == "net" || strings.HasPrefix(p, "net/") || p == "syscall" || p == "unsafe" {
				t.Errorf("%s imports %q directly; the engine does no I/O", fset.Position(is.Pos()), p)
			}
			if forbiddenRime(p) {
				t.Errorf("%s imports %q", fset.Position(is.Pos()), p)
			}
		}
	}

	// Transitive dependencies, via go list.
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not available")
	}
	cmd := exec.Command("go", "list", "-deps", "-json", ".")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Standard   bool
	}
	dec := json.NewDecoder(out)
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		seen++
		if forbiddenRime(p.ImportPath) {
			t.Errorf("engine depends on %s", p.ImportPath)
		}
		if p.ImportPath == module || strings.HasPrefix(p.ImportPath, module+"/") {
			for _, imp := range p.Imports {
				if imp == "net" || strings.HasPrefix(imp, "net/") || imp == "os/exec" {
					t.Errorf("%s (an engine dependency) imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	if seen == 0 {
		t.Fatal("go list listed no packages")
	}
}

func forbiddenRime(p string) bool {
	for _, bad := range []string{"node", "hub", "protocols"} {
		b := module + "/" + bad
		if p == b || strings.HasPrefix(p, b+"/") {
			return true
		}
	}
	return false
}
