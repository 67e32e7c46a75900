package policy

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test rule.
type TestResult struct {
	Package string `json:"package"`
	Name    string `json:"name"`
	// Location is file:line of the test rule.
	Location string `json:"location"`
	// Outcome is "pass", "fail", "error" or "skip" (a todo_test_ rule).
	Outcome string `json:"outcome"`
	// Detail says where a failing test stopped, or what the error was.
	Detail string `json:"detail,omitempty"`
	// Output is what the test printed (print()).
	Output   string        `json:"output,omitempty"`
	Duration time.Duration `json:"duration_ns"`

	file string // for sorting by position
	row  int
}

// TestReport is the outcome of a policy test run.
type TestReport struct {
	Results []TestResult `json:"results"`
	Passed  int          `json:"passed"`
	Failed  int          `json:"failed"`
	Errored int          `json:"errored"`
	Skipped int          `json:"skipped"`
}

// OK says every test ran and passed, and that there was at least one.
func (r TestReport) OK() bool {
	return r.Failed == 0 && r.Errored == 0 && r.Passed > 0
}

// Test runs the Rego tests of the policies in dir as `opa test dir` does:
// every rule named test_* in any module must be true; todo_test_* rules
// are skipped. An empty dir means the embedded default policies. The
// error is for policies that cannot be read or compiled; failing tests are
// in the report.
func Test(ctx context.Context, dir string) (TestReport, error) {
	return testSources(ctx, dir, nil)
}

// TestFS is Test for policies held in fsys.
func TestFS(ctx context.Context, fsys fs.FS) (TestReport, error) {
	if fsys == nil {
		return TestReport{}, fmt.Errorf("policy: TestFS: nil file system")
	}
	return testSources(ctx, "", fsys)
}

func testSources(ctx context.Context, dir string, fsys fs.FS) (TestReport, error) {
	srcs, err := loadSources(dir, fsys)
	if err != nil {
		return TestReport{}, err
	}
	mods := make(map[string]*ast.Module, len(srcs))
	for _, s := range srcs {
		m, err := ast.ParseModuleWithOpts(s.name, s.text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return TestReport{}, fmt.Errorf("policy: %w", err)
		}
		mods[s.name] = m
	}
	ch, err := tester.NewRunner().
		SetStore(inmem.New()).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		RaiseBuiltinErrors(true).
		SetModules(mods).
		RunTests(ctx, nil)
	if err != nil {
		return TestReport{}, fmt.Errorf("policy: compiling tests in %s: %w", where(dir, fsys), err)
	}
	var rep TestReport
	for r := range ch {
		tr := TestResult{Package: r.Package, Name: r.Name, Output: string(r.Output), Duration: r.Duration}
		if r.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
			tr.file, tr.row = r.Location.File, r.Location.Row
		}
		switch {
		case r.Skip:
			tr.Outcome = "skip"
			rep.Skipped++
		case r.Error != nil:
			tr.Outcome, tr.Detail = "error", r.Error.Error()
			rep.Errored++
		case r.Fail:
			tr.Outcome = "fail"
			if r.FailedAt != nil {
				tr.Detail = fmt.Sprintf("failed at %s", r.FailedAt)
				if r.FailedAt.Location != nil {
					tr.Detail += fmt.Sprintf(" (%s:%d)", r.FailedAt.Location.File, r.FailedAt.Location.Row)
				}
			}
			rep.Failed++
		default:
			tr.Outcome = "pass"
			rep.Passed++
		}
		rep.Results = append(rep.Results, tr)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("policy: tests: %w", err)
	}
	// The runner answers in completion order; sort so reports compare.
	slices.SortFunc(rep.Results, func(a, b TestResult) int {
		return cmp.Or(cmp.Compare(a.Package, b.Package), cmp.Compare(a.file, b.file), cmp.Compare(a.row, b.row), cmp.Compare(a.Name, b.Name))
	})
	return rep, nil
}
