package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rime-dev/rime/policies"
	"github.com/rime-dev/rime/policy"
)

// rime runs the CLI in-process and returns exit code, stdout and stderr.
func rime(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// defaultPolicyDir copies the embedded policies to a directory a test may
// change.
func defaultPolicyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := fs.ReadDir(policies.FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".rego" {
			continue
		}
		b, err := fs.ReadFile(policies.FS(), e.Name())
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, e.Name(), string(b))
	}
	return dir
}

const (
	strangerJoin = `{"action": "join", "group": "friends", "node": {"id": "n-stranger", "class": "phone", "trust": "member"}}`
	invitedJoin  = `{"action": "join", "group": "friends", "node": {"id": "n-new", "class": "phone", "trust": "member", "invited": true}}`
	cloudPlace   = `{"action": "place", "group": "friends", "node": {"id": "n-cloud", "class": "cloud", "trust": "honest-but-curious", "member": true}, "data": {"class": "photos", "confidential": true}}`
	sealedPlace  = `{"action": "place", "group": "friends", "node": {"id": "n-cloud", "class": "cloud", "trust": "honest-but-curious", "member": true}, "data": {"class": "photos", "confidential": true, "encrypted": true}}`
	strangerRely = `{"action": "relay", "group": "friends", "node": {"id": "n-stranger", "class": "phone", "trust": "member"}}`
)

func TestPolicyTestCommand(t *testing.T) {
	code, out, errs := rime(t, "policy", "test")
	if code != ExitOK || !strings.Contains(out, "PASS:") {
		t.Fatalf("rime policy test: exit %d\n%s%s", code, out, errs)
	}
	dir := defaultPolicyDir(t)
	code, out, _ = rime(t, "policy", "test", dir, "--format", "json")
	var rep policy.TestReport
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK() {
		t.Fatalf("rime policy test DIR --format json: exit %d\n%s", code, out)
	}

	writeFile(t, dir, "wrong_test.rego", "package rime.trust_test\n\nimport data.rime.trust\n\ntest_strangers_join if trust.decision.allow with input as {\"action\": \"join\", \"group\": \"g\", \"node\": {\"id\": \"x\", \"trust\": \"member\"}}\n")
	code, out, _ = rime(t, "policy", "test", dir)
	if code != ExitFailure || !strings.Contains(out, "FAIL: data.rime.trust_test.test_strangers_join") || !strings.Contains(out, "wrong_test.rego:5") {
		t.Fatalf("a failing Rego test: exit %d, want %d, naming the test and its file:line\n%s", code, ExitFailure, out)
	}

	writeFile(t, dir, "wrong_test.rego", "package rime.trust_test\n\ntest_x if {\n")
	code, _, errs = rime(t, "policy", "test", dir)
	if code != ExitInvalid || !strings.Contains(errs, "wrong_test.rego:") {
		t.Fatalf("a test that does not parse: exit %d, want %d, naming the file\n%s", code, ExitInvalid, errs)
	}

	empty := t.TempDir()
	writeFile(t, empty, "p.rego", "package p\n\nx := 1\n")
	if code, _, errs = rime(t, "policy", "test", empty); code != ExitFailure || !strings.Contains(errs, "no tests") {
		t.Fatalf("no tests: exit %d, %s", code, errs)
	}
}

func TestAuditInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		req     string
		allow   bool
		reasons []string
	}{
		{strangerJoin, false, []string{"n-stranger", "must invite"}},
		{invitedJoin, true, nil},
		{cloudPlace, false, []string{"photos", "honest-but-curious"}},
		{sealedPlace, true, nil},
	} {
		req := writeFile(t, dir, "request.json", c.req)
		code, out, errs := rime(t, "audit", "--input", req, "--format", "json")
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", c.req, code, errs)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("%s: output is not JSON: %v\n%s", c.req, err, out)
		}
		if len(d) != 3 || d["allow"] != c.allow || d["decision_id"] == "" {
			t.Errorf("%s: got %s, want exactly allow=%v, reasons and a decision_id", c.req, out, c.allow)
		}
		reasons, _ := d["reasons"].([]any)
		if c.allow != (len(reasons) == 0) || reasons == nil {
			t.Errorf("%s: reasons %v with allow %v", c.req, d["reasons"], c.allow)
		}
		for _, w := range c.reasons {
			if !strings.Contains(fmt.Sprint(reasons), w) {
				t.Errorf("%s: reasons %v do not mention %s", c.req, reasons, w)
			}
		}
	}
	// Without --log nothing is written.
	if _, err := os.Stat(DefaultDecisionLog); err == nil {
		t.Errorf("audit --input wrote %s without --log", DefaultDecisionLog)
	}
}

func TestAuditInputErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		src  string
		want []string
	}{
		{`{"action": "fly", "group": "g", "node": {"id": "n", "trust": "member"}}`, []string{`unknown action "fly"`, "join, invite, place, relay, offload, read"}},
		{`{"action": "join", "group": "g", "node": {"id": "n", "trust": "trusted"}}`, []string{"node.trust", `"trusted"`, "member, honest-but-curious, byzantine"}},
		{`{"action": "join", "group": "g", "node": {"id": "n", "trust": "member", "admin": true}}`, []string{`unknown field "admin"`}},
		{`{"action": "join",`, []string{"ends in the middle"}},
	} {
		req := writeFile(t, dir, "bad-request.json", c.src)
		code, _, errs := rime(t, "audit", "--input", req, "--format", "json")
		if code != ExitInvalid || !strings.HasPrefix(errs, req+": ") {
			t.Errorf("%s: exit %d, stderr %q; want %d and the file named first", c.src, code, errs, ExitInvalid)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr %q does not say %s", c.src, errs, w)
			}
		}
	}
	if code, _, errs := rime(t, "audit", "--input", filepath.Join(dir, "missing.json")); code != ExitFailure || !strings.Contains(errs, "missing.json") {
		t.Errorf("missing request file: exit %d, %q", code, errs)
	}
}

// TestAuditListAndFilter logs decisions through --input --log and lists
// them back with each filter.
func TestAuditListAndFilter(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "decisions.log")
	ids := map[string]string{}
	for name, src := range map[string]string{"strangerJoin": strangerJoin, "invitedJoin": invitedJoin, "cloudPlace": cloudPlace, "sealedPlace": sealedPlace, "strangerRelay": strangerRely} {
		req := writeFile(t, dir, name+".json", src)
		code, out, errs := rime(t, "audit", "--input", req, "--log", log, "--format", "json")
		if code != ExitOK {
			t.Fatalf("%s: exit %d %s", name, code, errs)
		}
		var d policy.Decision
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		ids[name] = d.DecisionID
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"strangerJoin", "invitedJoin", "cloudPlace", "sealedPlace", "strangerRelay"}},
		{[]string{"--deny"}, []string{"strangerJoin", "cloudPlace"}},
		{[]string{"--allow"}, []string{"invitedJoin", "sealedPlace", "strangerRelay"}},
		{[]string{"--action", "join"}, []string{"strangerJoin", "invitedJoin"}},
		{[]string{"--node", "n-stranger"}, []string{"strangerJoin", "strangerRelay"}},
		{[]string{"--node", "n-stranger", "--allow"}, []string{"strangerRelay"}},
		{[]string{"--action", "read"}, nil},
	} {
		args := append([]string{"audit", "--log", log, "--format", "json"}, c.args...)
		code, out, errs := rime(t, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d %s", c.args, code, errs)
		}
		var got struct {
			Total     int            `json:"total"`
			Decisions []policy.Event `json:"decisions"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %v\n%s", c.args, err, out)
		}
		seen := map[string]bool{}
		for _, ev := range got.Decisions {
			seen[ev.ID] = true
		}
		if got.Total != 5 || len(got.Decisions) != len(c.want) || got.Decisions == nil {
			t.Errorf("%v: %d of %d decisions listed, want %d of 5", c.args, len(got.Decisions), got.Total, len(c.want))
		}
		for _, w := range c.want {
			if !seen[ids[w]] {
				t.Errorf("%v: %s (%s) not listed", c.args, w, ids[w])
			}
		}
	}
	code, out, _ := rime(t, "audit", "--log", log, "--deny")
	if code != ExitOK || !strings.Contains(out, "must invite") || !strings.Contains(out, ids["cloudPlace"]) ||
		strings.Contains(out, ids["sealedPlace"]) || !strings.Contains(out, "2 of 5 decisions") {
		t.Errorf("text listing of denials:\n%s", out)
	}
}

func TestAuditReplay(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "decisions.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(t.Context(), policy.Config{DecisionLog: f})
	if err != nil {
		t.Fatal(err)
	}
	var relays []string // decisions the changed policy must flip
	for _, member := range []bool{false, true} {
		for _, tr := range policy.Trusts {
			for _, a := range policy.Actions {
				in := policy.Input{Action: a, Group: "friends", Node: policy.Node{ID: fmt.Sprintf("n-%s-%v", tr, member), Trust: tr, Member: member},
					Data: policy.Data{Class: "photos", Confidential: true}}
				d, err := e.Decide(t.Context(), in)
				if err != nil {
					t.Fatal(err)
				}
				if a == policy.Relay && !member {
					relays = append(relays, d.DecisionID)
				}
			}
		}
	}
	f.Close()

	code, out, errs := rime(t, "audit", "--replay", log, "--format", "json")
	var rep policy.ReplayReport
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Replayed != 36 || len(rep.Flips) != 0 {
		t.Fatalf("replay against the same policy: exit %d %s\n%s", code, errs, out)
	}

	pol := defaultPolicyDir(t)
	writeFile(t, pol, "relay.rego", "package rime.trust\n\ndeny contains \"only members relay\" if {\n\tinput.action == \"relay\"\n\tnot is_member\n}\n")
	code, out, errs = rime(t, "audit", "--replay", log, "--policy", pol, "--format", "json")
	rep = policy.ReplayReport{}
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("replay against a changed policy: exit %d %s\n%s", code, errs, out)
	}
	var flipped []string
	for _, fl := range rep.Flips {
		flipped = append(flipped, fl.Event.ID)
		if !fl.Event.Result.Allow || fl.Now.Allow || fmt.Sprint(fl.Now.Reasons) != "[only members relay]" {
			t.Errorf("flip %+v: want allowed then, denied now for 'only members relay'", fl)
		}
	}
	if fmt.Sprint(flipped) != fmt.Sprint(relays) {
		t.Fatalf("flips %v, want exactly the non-member relays %v", flipped, relays)
	}
	code, out, _ = rime(t, "audit", "--replay", log, "--policy", pol)
	if code != ExitOK || !strings.Contains(out, "3 would flip") || !strings.Contains(out, "allowed then, denied now") {
		t.Errorf("text replay:\n%s", out)
	}
}

func TestAuditBadFlagsAndFiles(t *testing.T) {
	dir := t.TempDir()
	req := writeFile(t, dir, "r.json", strangerJoin)
	badLog := writeFile(t, dir, "bad.log", "{\"version\":1}\n")
	brokenPolicy := t.TempDir()
	writeFile(t, brokenPolicy, "p.rego", "package rime.trust\n\ndecision := {\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"audit", "--allow", "--deny", "--log", badLog}, ExitInvalid, "exclude each other"},
		{[]string{"audit", "--action", "delete"}, ExitInvalid, "join, invite, place, relay, offload, read"},
		{[]string{"audit", "--input", req, "--replay", badLog}, ExitInvalid, "give one of them"},
		{[]string{"audit", "--input", req, "--deny"}, ExitInvalid, "do not apply"},
		{[]string{"audit", "--policy", dir}, ExitInvalid, "--policy applies"},
		{[]string{"audit", "--format", "yaml"}, ExitInvalid, "--format"},
		{[]string{"audit", "--log", filepath.Join(dir, "none.log")}, ExitFailure, "no decision log at"},
		{[]string{"audit", "--log", badLog}, ExitInvalid, badLog + ": line 1: id: missing"},
		{[]string{"audit", "--replay", badLog}, ExitInvalid, badLog + ": line 1"},
		{[]string{"audit", "--input", req, "--policy", brokenPolicy, "--log", filepath.Join(dir, "new.log")}, ExitInvalid, "p.rego:"},
		{[]string{"audit", "--input", req, "--policy", filepath.Join(dir, "nopolicy"), "--log", filepath.Join(dir, "new.log")}, ExitInvalid, "nopolicy does not exist"},
	} {
		code, _, errs := rime(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("rime %v: exit %d, stderr %q; want %d saying %q", c.args, code, errs, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new.log")); err == nil {
		t.Errorf("a request refused before any decision created the --log file")
	}
}
