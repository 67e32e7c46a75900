package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/protocols"
)

// TestMain lets the test binary stand in for the rime binary: the node
// process tests run it again with RIME_CLI_MAIN set, so they test the
// very code under test without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("RIME_CLI_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// nodeProcess is one `rime node` (or other long-running rime) child
// process.
type nodeProcess struct {
	cmd    *exec.Cmd
	ready  nodeReady
	stderr *bytes.Buffer
	done   chan error
	lines  chan string
}

func startNodeProcess(t *testing.T, ctx context.Context, args ...string) *nodeProcess {
	t.Helper()
	p, first := startProcess(t, ctx, append([]string{"node", "--format", "json"}, args...)...)
	if err := json.Unmarshal([]byte(first), &p.ready); err != nil || p.ready.Event != "ready" {
		t.Fatalf("rime node %v: first line %q is not a ready event: %v", args, first, err)
	}
	return p
}

// startProcess runs rime with args (this test binary standing in) and
// returns once it printed its first line, which it returns.
func startProcess(t *testing.T, ctx context.Context, args ...string) (*nodeProcess, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RIME_CLI_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &nodeProcess{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Status lines are few; a test that stops reading must not block the
	// node on its stdout, so a full buffer drops.
	lines := make(chan string, 1024)
	p.lines = lines
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case line := <-lines:
		return p, line
	case err := <-p.done:
		t.Fatalf("rime %v exited before it was ready: %v\n%s", args, err, p.stderr)
	case <-ctx.Done():
		t.Fatalf("rime %v was not ready in time\n%s", args, p.stderr)
	}
	return nil, ""
}

// waitStatus reads the node's status lines until one for class has
// voters voters.
func (p *nodeProcess) waitStatus(t *testing.T, ctx context.Context, class string, voters int) {
	t.Helper()
	var seen []string
	for {
		select {
		case line := <-p.lines:
			seen = append(seen, line)
			var st struct {
				Event, Class string
				Voters       int
			}
			if json.Unmarshal([]byte(line), &st) == nil && st.Event == "status" && st.Class == class && st.Voters == voters {
				return
			}
		case err := <-p.done:
			t.Fatalf("rime node %s exited: %v\n%s", p.ready.ID, err, p.stderr)
		case <-ctx.Done():
			t.Fatalf("rime node %s never reported %d voters for %s; it said:\n%s", p.ready.ID, voters, class, strings.Join(seen, "\n"))
		}
	}
}

// stop sends SIGTERM, as Ctrl-C would, and expects a clean exit.
func (p *nodeProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Errorf("rime node %s did not stop cleanly: %v\n%s", p.ready.ID, err, p.stderr)
	}
	p.done <- nil // for Cleanup
}

func runMain(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, &out, &errOut)
	if code != ExitOK && code != ExitUnsatisfiable {
		t.Fatalf("rime %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String(), code
}

// Three `rime node` processes on loopback form a cluster from a plan
// file, and an application reaches each through its HTTP API: every
// node's session sees every node's updates, in one order.
func TestThreeNodeProcessesServeAClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	planJSON, _ := runMain(t, "plan", "--implemented", "--format", "json", "../../examples/collabdoc")
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(planJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		id, _ := runMain(t, "node", "id", "--data", filepath.Join(dir, fmt.Sprint("n", i)))
		ids = append(ids, strings.TrimSpace(id))
	}
	admit := strings.Join(ids, ",")
	common := func(i int, class string) []string {
		return []string{"--data", filepath.Join(dir, fmt.Sprint("n", i)), "--plan", planFile, "--node-class", class,
			"--admit", admit, "--class", "document"}
	}
	first := startNodeProcess(t, ctx, common(0, "workstation")...)
	if first.ready.ID != ids[0] {
		t.Fatalf("node 0 runs as %s, but `rime node id` said %s", first.ready.ID, ids[0])
	}
	procs := []*nodeProcess{first}
	for i := 1; i < 3; i++ {
		procs = append(procs, startNodeProcess(t, ctx, append(common(i, "laptop"), "--join", first.ready.Addr, "--secret", first.ready.Secret)...))
	}

	// The first node reports the class's shard with all three voters.
	first.waitStatus(t, ctx, "document", 3)

	var chans []*client.Channel
	for i, p := range procs {
		c, err := client.NewHTTP(p.ready.API, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := openWhenReady(ctx, c)
		if err != nil {
			t.Fatalf("node %d: open the document channel: %v\n%s", i, err, p.stderr)
		}
		defer ch.Close()
		chans = append(chans, ch)
	}
	want := map[string]bool{}
	for i, ch := range chans {
		u := fmt.Sprintf("from node %d", i)
		want[u] = true
		if err := ch.Submit(ctx, []byte(u)); err != nil {
			t.Fatalf("node %d: submit: %v", i, err)
		}
	}
	orders := receive(t, ctx, chans, procs, len(want))
	for i, got := range orders {
		for _, u := range got {
			if !want[u] {
				t.Fatalf("node %d delivered %q, which nobody submitted", i, u)
			}
		}
	}
	sameOrder(t, orders)

	// Three voters: the other two go on without the first node.
	chans[0].Close()
	procs[0].stop(t)
	if err := chans[1].Submit(ctx, []byte("after node 0 left")); err != nil {
		t.Fatalf("node 1: submit after node 0 left: %v", err)
	}
	sameOrder(t, receive(t, ctx, chans[1:], procs[1:], 1))
	for _, ch := range chans[1:] {
		ch.Close()
	}
	for _, p := range procs[1:] {
		p.stop(t)
	}
}

// receive reads n updates from each channel.
func receive(t *testing.T, ctx context.Context, chans []*client.Channel, procs []*nodeProcess, n int) [][]string {
	t.Helper()
	var orders [][]string
	for i, ch := range chans {
		var got []string
		for len(got) < n {
			select {
			case ev, ok := <-ch.Events():
				if !ok {
					t.Fatalf("node %s: session ended: %v", procs[i].ready.ID, ch.Err())
				}
				if ev.Kind == protocols.Update {
					got = append(got, string(ev.Data))
				}
			case <-ctx.Done():
				t.Fatalf("node %s saw only %q of %d updates\n%s", procs[i].ready.ID, got, n, procs[i].stderr)
			}
		}
		orders = append(orders, got)
	}
	return orders
}

func sameOrder(t *testing.T, orders [][]string) {
	t.Helper()
	for i := 1; i < len(orders); i++ {
		if !slices.Equal(orders[i], orders[0]) {
			t.Fatalf("nodes disagree on the order: %q and %q", orders[0], orders[i])
		}
	}
}

// openWhenReady opens the document channel, retrying while the class's
// shard is still electing its first leader (the API answers 503 then).
func openWhenReady(ctx context.Context, c *client.Client) (*client.Channel, error) {
	for {
		ch, err := c.Open(ctx, "document")
		if err == nil || ctx.Err() != nil {
			return ch, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond): // a client's retry back-off, not a wait for a condition
		}
	}
}
