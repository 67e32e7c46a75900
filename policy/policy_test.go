package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/policies"
)

// TestDefaultPolicyRegoTests runs policies/trust_test.rego, so that
// `go test ./policy/...` fails when a Rego test does.
func TestDefaultPolicyRegoTests(t *testing.T) {
	rep, err := Test(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Outcome != "pass" {
			t.Errorf("%s %s.%s: %s %s", r.Location, r.Package, r.Name, r.Outcome, r.Detail)
		}
	}
	if !rep.OK() || rep.Passed < 20 {
		t.Fatalf("report %+v: want every one of the default policy's tests (20 or more) to pass", rep)
	}
}

// TestRegoTestsCanFail makes sure the runner is not vacuous: a false test
// fails, an erroring one errors, a todo is skipped, and the rest pass.
func TestRegoTestsCanFail(t *testing.T) {
	dir := copyDefault(t)
	write(t, dir, "extra_test.rego", `package rime.trust_test

import data.rime.trust

test_wrong if trust.decision.allow with input as {"action": "join", "group": "g", "node": {"id": "x", "trust": "member"}}
test_broken if 1 / 0 == 1
todo_test_later if false
`)
	rep, err := Test(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Errored != 1 || rep.Skipped != 1 || rep.OK() {
		t.Fatalf("got %d failed, %d errored, %d skipped (OK=%v); want 1, 1, 1 and not OK", rep.Failed, rep.Errored, rep.Skipped, rep.OK())
	}
	for _, r := range rep.Results {
		if r.Name == "test_wrong" && (r.Outcome != "fail" || !strings.Contains(r.Location, "extra_test.rego:5")) {
			t.Errorf("test_wrong: %+v, want a failure located at extra_test.rego:5", r)
		}
	}
}

// oracle is the default policy restated in Go, independently of the Rego,
// so that every combination of input is checked, not only the ones the
// Rego tests thought of.
func oracle(in Input) bool {
	member := in.Node.Member
	trusted := member && in.Node.Trust == TrustMember
	byz := in.Node.Trust == TrustByzantine
	conf, enc := in.Data.Confidential, in.Data.Encrypted
	switch in.Action {
	case Join:
		return member || in.Node.Invited
	case Invite:
		return member
	case Place:
		return !(byz && !enc) && !(conf && !enc && !trusted)
	case Relay:
		return true
	case Offload:
		return member && !byz && (!conf || trusted)
	case Read:
		return !conf || trusted
	}
	return false
}

// universe is every input over one group, one class: each action, trust,
// membership, invitation, confidentiality and encryption.
func universe() []Input {
	var ins []Input
	for _, a := range Actions {
		for _, tr := range Trusts {
			for _, flags := range []int{0, 1, 2, 3} {
				for _, d := range []int{0, 1, 2, 3} {
					ins = append(ins, Input{
						Action: a, Group: "friends",
						Node: Node{ID: fmt.Sprintf("n-%s-%d", tr, flags), Class: "c-" + string(tr), Trust: tr,
							Member: flags&1 != 0, Invited: flags&2 != 0},
						Data: Data{Class: "photos", Confidential: d&1 != 0, Encrypted: d&2 != 0},
					})
				}
			}
		}
	}
	return ins
}

// fixed returns a Config whose clock and IDs are deterministic.
func fixed(cfg Config) Config {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	n := 0
	cfg.Clock = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return t0.Add(time.Duration(n) * time.Second)
	}
	cfg.NewID = func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("d%04d", n)
	}
	return cfg
}

func TestDefaultPolicyMatchesOracle(t *testing.T) {
	e, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	allowed, denied := 0, 0
	for _, in := range universe() {
		d, err := e.Decide(t.Context(), in)
		if err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		if want := oracle(in); d.Allow != want {
			t.Errorf("%s by %+v on %+v: allow=%v, want %v (reasons %q)", in.Action, in.Node, in.Data, d.Allow, want, d.Reasons)
		}
		if d.Allow != (len(d.Reasons) == 0) {
			t.Errorf("%+v: allow=%v with reasons %q: a denial must say why, an allow must not", in, d.Allow, d.Reasons)
		}
		if d.DecisionID == "" {
			t.Errorf("%+v: no decision ID", in)
		}
		if d.Allow {
			allowed++
		} else {
			denied++
		}
	}
	if allowed == 0 || denied == 0 {
		t.Fatalf("%d allowed, %d denied: the universe should exercise both", allowed, denied)
	}
}

func TestReasonsNameTheNodeAndClass(t *testing.T) {
	e, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(t.Context(), Input{Action: Place, Group: "friends",
		Node: Node{ID: "n-cloud", Class: "cloud", Trust: TrustHonestButCurious, Member: true},
		Data: Data{Class: "photos", Confidential: true}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || len(d.Reasons) != 1 {
		t.Fatalf("got %+v, want one reason to deny", d)
	}
	for _, w := range []string{"photos", "n-cloud", `"cloud"`, "honest-but-curious", "confidential"} {
		if !strings.Contains(d.Reasons[0], w) {
			t.Errorf("reason %q does not mention %s", d.Reasons[0], w)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	e, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in     Input
		fields []string
		words  []string
	}{
		{Input{Action: "delete", Group: "g", Node: Node{ID: "n", Trust: TrustMember}}, []string{"action"}, []string{`"delete"`, "join, invite, place, relay, offload, read"}},
		{Input{Action: Join, Group: "g", Node: Node{ID: "n", Trust: "trusted"}}, []string{"node.trust"}, []string{`"trusted"`, "honest-but-curious"}},
		{Input{Action: Read, Node: Node{Trust: TrustMember}}, []string{"group", "node.id", "data.class"}, nil},
		{Input{}, []string{"action", "group", "node.id", "node.trust"}, []string{"missing"}},
	} {
		_, err := e.Decide(t.Context(), c.in)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%+v: err %v, want an *InputError", c.in, err)
			continue
		}
		var got []string
		for _, p := range ie.Problems {
			got = append(got, p.Field)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.fields) {
			t.Errorf("%+v: problems at %v, want %v", c.in, got, c.fields)
		}
		for _, w := range c.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q does not say %s", c.in, err, w)
			}
		}
	}
}

func TestDecodeInput(t *testing.T) {
	good := `{"action": "place", "group": "friends",
  "node": {"id": "n1", "class": "cloud", "trust": "honest-but-curious", "member": true},
  "data": {"class": "photos", "confidential": true}}`
	in, err := DecodeInput([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Input{Action: Place, Group: "friends", Node: Node{ID: "n1", Class: "cloud", Trust: TrustHonestButCurious, Member: true},
		Data: Data{Class: "photos", Confidential: true}}
	if in != want {
		t.Fatalf("decoded %+v, want %+v", in, want)
	}
	for _, c := range []struct{ src, want string }{
		{``, "empty"},
		{`{"action": "join",`, "ends in the middle"},
		{`{"action": "join", "group": "g", "node": {"id": "n", "trust": "member", "membr": true}}`, `unknown field "membr"`},
		{`{"action": "join", "group": "g",` + "\n" + `"node": {"id": "n", "trust": "member", "member": "yes"}}`, "line 2, column 54: node.member: expected a boolean, found string"},
		{`{"action": "join", "group": "g", "node": {"id": "n", "trust": "member"}} {}`, "expected one JSON object"},
		{`[1]`, "expected an object, found array"},
		{`{"action": "fly", "group": "g", "node": {"id": "n", "trust": "member"}}`, `unknown action "fly"`},
		{`{"action": "join" "group": "g"}`, "line 1, column 19"},
	} {
		_, err := DecodeInput([]byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeInput(%q) = %v, want an error saying %q", c.src, err, c.want)
		}
	}
}

// TestLogReplaysToSameDecisions: every decision goes to the log, the log
// reads back to exactly what was decided, and replaying it against the same
// policy flips nothing.
func TestLogReplaysToSameDecisions(t *testing.T) {
	var log bytes.Buffer
	e, err := New(t.Context(), fixed(Config{DecisionLog: &log}))
	if err != nil {
		t.Fatal(err)
	}
	ins := universe()
	var ds []Decision
	for _, in := range ins {
		d, err := e.Decide(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	evs, err := ReadLog(bytes.NewReader(log.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(ins) {
		t.Fatalf("log holds %d events, want %d", len(evs), len(ins))
	}
	for i, ev := range evs {
		d := ds[i]
		if ev.ID != d.DecisionID || ev.Input != ins[i] || ev.Result.Allow != d.Allow ||
			fmt.Sprint(ev.Result.Reasons) != fmt.Sprint(d.Reasons) || ev.Revision != e.Revision() ||
			ev.Version != EventVersion || ev.Time.IsZero() {
			t.Fatalf("event %d = %+v, want decision %+v of %+v at revision %s", i, ev, d, ins[i], e.Revision())
		}
	}
	// A fresh engine from the same sources: same revision, no flips.
	again, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Revision() != e.Revision() {
		t.Fatalf("revision %s then %s for the same sources", e.Revision(), again.Revision())
	}
	before := log.Len()
	rep, err := Replay(t.Context(), evs, again)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != len(evs) || len(rep.Flips) != 0 || len(rep.Reworded) != 0 {
		t.Fatalf("replay against the same policy: %d replayed, %d flips, %d reworded; want %d, 0, 0",
			rep.Replayed, len(rep.Flips), len(rep.Reworded), len(evs))
	}
	rep, err = Replay(t.Context(), evs, e)
	if err != nil || len(rep.Flips) != 0 || log.Len() != before {
		t.Fatalf("replay on the logging engine: %v, %d flips, log grew by %d bytes; want no flips and no log writes",
			err, len(rep.Flips), log.Len()-before)
	}
}

// TestReplayFindsExactlyTheFlips changes the policy both ways (one
// tightening, one loosening) and checks the replay reports exactly the
// decisions the change should flip, computed from the inputs.
func TestReplayFindsExactlyTheFlips(t *testing.T) {
	var log bytes.Buffer
	e, err := New(t.Context(), fixed(Config{DecisionLog: &log}))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range universe() {
		if _, err := e.Decide(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := ReadLog(&log)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		change func(t *testing.T, dir string)
		flips  func(Input) bool
	}{
		{"relay only through members", func(t *testing.T, dir string) {
			write(t, dir, "relay.rego", "package rime.trust\n\ndeny contains \"relays must be members\" if {\n\tinput.action == \"relay\"\n\tnot is_member\n}\n")
		}, func(in Input) bool { return in.Action == Relay && !in.Node.Member }},
		{"byzantine nodes may hold plain non-confidential data", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "trust.rego")
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			old := "\tis_byzantine\n\tnot is_encrypted\n"
			if bytes.Count(src, []byte(old)) != 1 {
				t.Fatalf("trust.rego no longer has the byzantine placement rule this test edits")
			}
			write(t, dir, "trust.rego", strings.Replace(string(src), old, "\tis_byzantine\n\tnot is_encrypted\n\tis_confidential\n", 1))
		}, func(in Input) bool {
			return in.Action == Place && in.Node.Trust == TrustByzantine && !in.Data.Encrypted && !in.Data.Confidential
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDefault(t)
			c.change(t, dir)
			changed, err := New(t.Context(), Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if changed.Revision() == e.Revision() {
				t.Fatalf("a changed policy kept revision %s", e.Revision())
			}
			rep, err := Replay(t.Context(), evs, changed)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, f := range rep.Flips {
				got[f.Event.ID] = true
				if f.Now.Allow == f.Event.Result.Allow {
					t.Errorf("%s listed as a flip but allow stayed %v", f.Event.ID, f.Now.Allow)
				}
			}
			want := 0
			for _, ev := range evs {
				if c.flips(ev.Input) {
					want++
					if !got[ev.ID] {
						t.Errorf("%s (%+v) should flip and was not reported", ev.ID, ev.Input)
					}
				}
			}
			if want == 0 || len(rep.Flips) != want {
				t.Errorf("%d flips reported, want %d (and more than 0)", len(rep.Flips), want)
			}
			if rep.Replayed != len(evs) {
				t.Errorf("replayed %d of %d", rep.Replayed, len(evs))
			}
		})
	}
}

func TestRevisionIgnoresWhereAndTests(t *testing.T) {
	emb, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	dir := copyDefault(t)
	fromDir, err := New(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "more_test.rego", "package rime.more_test\n\ntest_x if true\n")
	withTest, err := New(t.Context(), Config{FS: os.DirFS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if emb.Revision() != fromDir.Revision() || fromDir.Revision() != withTest.Revision() {
		t.Fatalf("revisions %s, %s, %s: want one revision for the same policy files", emb.Revision(), fromDir.Revision(), withTest.Revision())
	}
	if !strings.HasPrefix(emb.Revision(), "sha256:") || len(emb.Revision()) != len("sha256:")+64 {
		t.Fatalf("revision %q: want sha256: and 64 hex digits", emb.Revision())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestUnloggedDecisionIsNotGiven(t *testing.T) {
	e, err := New(t.Context(), Config{DecisionLog: failingWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(t.Context(), Input{Action: Relay, Group: "g", Node: Node{ID: "n", Trust: TrustMember}})
	if err == nil || !strings.Contains(err.Error(), "disk full") || d.Allow {
		t.Fatalf("got %+v, %v; want no decision and the write error", d, err)
	}
}

// TestConcurrentDecisionsLogWholeLines: the engine is shared by the hub's
// request handlers, so concurrent decisions must each log one whole line.
func TestConcurrentDecisionsLogWholeLines(t *testing.T) {
	var log bytes.Buffer
	e, err := New(t.Context(), Config{DecisionLog: &log})
	if err != nil {
		t.Fatal(err)
	}
	ins := universe()
	var wg sync.WaitGroup
	errs := make(chan error, len(ins))
	for _, in := range ins {
		wg.Go(func() {
			if _, err := e.Decide(context.Background(), in); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs, err := ReadLog(&log)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[ev.ID] = true
	}
	if len(evs) != len(ins) || len(ids) != len(ins) {
		t.Fatalf("%d events with %d distinct IDs, want %d of each", len(evs), len(ids), len(ins))
	}
}

func TestBadPolicies(t *testing.T) {
	for _, c := range []struct {
		name, src, want string
	}{
		{"syntax", "package rime.trust\n\ndecision := {\n", "broken.rego:4: rego_parse_error"},
		{"not an object", "package rime.trust\n\ndecision := \"yes\"\n", "expected an object"},
		{"allow not boolean", "package rime.trust\n\ndecision := {\"allow\": 1, \"reasons\": []}\n", "expected a boolean"},
		{"undefined", "package rime.trust\n\nother := 1\n", "undefined"},
		{"reasons not strings", "package rime.trust\n\ndecision := {\"allow\": false, \"reasons\": [1]}\n", "expected strings"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "broken.rego", c.src)
			e, err := New(t.Context(), Config{Dir: dir})
			if err == nil {
				_, err = e.Decide(t.Context(), Input{Action: Relay, Group: "g", Node: Node{ID: "n", Trust: TrustMember}})
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
	if _, err := New(t.Context(), Config{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no policies") {
		t.Errorf("empty directory: %v, want 'no policies'", err)
	}
	if _, err := New(t.Context(), Config{Dir: "x", FS: policies.FS()}); err == nil {
		t.Errorf("Dir and FS both set: want a config error")
	}
}

func TestReadLogErrors(t *testing.T) {
	var log bytes.Buffer
	e, err := New(t.Context(), fixed(Config{DecisionLog: &log}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decide(t.Context(), universe()[0]); err != nil {
		t.Fatal(err)
	}
	good := strings.TrimSpace(log.String())
	for _, c := range []struct{ src, want string }{
		{good + "\n\n" + good + "\nnot json\n", "line 4: "},
		{strings.Replace(good, `"version":1`, `"version":2`, 1), "line 1: event version 2: this rime reads version 1"},
		{strings.Replace(good, `"version":1,`, ``, 1), "no \"version\""},
		{strings.Replace(good, `"trust":"member"`, `"trust":"root"`, 1), `unknown trust "root"`},
		{strings.Replace(good, `"id":"d0001"`, `"id":""`, 1), "id: missing"},
		{strings.Replace(good, `"revision"`, `"revison"`, 1), `unknown field "revison"`},
		{strings.Repeat(" ", MaxEventBytes+1) + "x", "line 1: longer than"},
	} {
		_, err := ReadLog(strings.NewReader(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadLog(%.60q...) = %v, want an error saying %q", c.src, err, c.want)
		}
	}
	evs, err := ReadLog(strings.NewReader("\n" + good + "\n\n"))
	if err != nil || len(evs) != 1 {
		t.Errorf("blank lines: %d events, %v; want 1 event", len(evs), err)
	}
}

// copyDefault copies the embedded policies into a temporary directory.
func copyDefault(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(policies.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".rego" {
			return err
		}
		b, err := fs.ReadFile(policies.FS(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}
