package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A `rime hub` process and three `rime node --hub` processes: the first
// node creates the app's group, a node nobody invited is refused with
// the command that invites it, `rime node invite` lets it in, the
// three form the class's shard, and the hub's decision log, read by
// `rime audit`, shows the refusal and the joins.
func TestHubAndNodeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	planJSON, _ := runMain(t, "plan", "--implemented", "--format", "json", "../../examples/collabdoc")
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(planJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	var plan struct{ Group string }
	if err := json.Unmarshal([]byte(planJSON), &plan); err != nil || plan.Group == "" {
		t.Fatalf("plan has no group: %v", err)
	}

	hubData := filepath.Join(dir, "hub")
	hubID, _ := runMain(t, "hub", "id", "--data", hubData, "--format", "json")
	var hid struct{ ID string }
	if err := json.Unmarshal([]byte(hubID), &hid); err != nil {
		t.Fatal(err)
	}
	hp, first := startProcess(t, ctx, "hub", "--format", "json", "--data", hubData, "--listen", "127.0.0.1:0", "--bootstrap", hid.ID)
	var hready hubReady
	if err := json.Unmarshal([]byte(first), &hready); err != nil || hready.Event != "ready" {
		t.Fatalf("rime hub: first line %q: %v", first, err)
	}
	defer hp.stop(t)

	nodeArgs := func(i int, extra ...string) []string {
		return append([]string{"--data", filepath.Join(dir, fmt.Sprint("n", i)), "--plan", planFile, "--node-class", "workstation",
			"--class", "document", "--hub", hready.Addr}, extra...)
	}
	n0 := startNodeProcess(t, ctx, nodeArgs(0)...)
	join := []string{"--join", n0.ready.Addr, "--secret", n0.ready.Secret}

	// Not invited: refused, with the invitation to run.
	var out, errOut bytes.Buffer
	code := Main(append([]string{"node", "--format", "json"}, nodeArgs(1, join...)...), &out, &errOut)
	if code != ExitInvalid || !strings.Contains(errOut.String(), "not invited") || !strings.Contains(errOut.String(), "rime node invite") {
		t.Fatalf("uninvited node: exit %d, stderr %q; want exit %d, 'not invited' and the invite command", code, errOut.String(), ExitInvalid)
	}

	procs := []*nodeProcess{n0}
	for i := 1; i < 3; i++ {
		idJSON, _ := runMain(t, "node", "id", "--data", filepath.Join(dir, fmt.Sprint("n", i)), "--format", "json")
		var id struct{ ID, Key string }
		if err := json.Unmarshal([]byte(idJSON), &id); err != nil || len(id.Key) != 64 {
			t.Fatalf("rime node id --format json: %q %v", idJSON, err)
		}
		runMain(t, "node", "invite", "--data", filepath.Join(dir, "n0"), "--hub", hready.Addr, "--group", plan.Group, "--key", id.Key)
		p := startNodeProcess(t, ctx, nodeArgs(i, join...)...)
		if p.ready.ID != id.ID {
			t.Fatalf("node %d runs as %s, `rime node id` said %s", i, p.ready.ID, id.ID)
		}
		procs = append(procs, p)
	}
	n0.waitStatus(t, ctx, "document", 3)

	audit, _ := runMain(t, "audit", "--log", filepath.Join(hubData, "decisions.log"), "--format", "json")
	var log struct {
		Decisions []struct {
			Input  struct{ Action string }
			Result struct{ Allow bool }
		}
	}
	if err := json.Unmarshal([]byte(audit), &log); err != nil {
		t.Fatalf("rime audit --format json: %v\n%s", err, audit)
	}
	var denied, joined, invited int
	for _, d := range log.Decisions {
		switch {
		case d.Input.Action == "join" && !d.Result.Allow:
			denied++
		case d.Input.Action == "join":
			joined++
		case d.Input.Action == "invite" && d.Result.Allow:
			invited++
		}
	}
	if denied < 1 || joined != 2 || invited != 2 {
		t.Fatalf("decision log: %d joins denied, %d allowed, %d invitations; want >=1, 2, 2:\n%s", denied, joined, invited, audit)
	}
	for _, p := range procs[1:] {
		p.stop(t)
	}
	n0.stop(t)
}
