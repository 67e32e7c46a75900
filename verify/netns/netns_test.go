package netns_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/internal/cli"
	"github.com/rime-dev/rime/network/faultnet"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/netns"
	"github.com/rime-dev/rime/verify/workload"
)

// TestMain lets the test binary stand in for rime in the namespaces.
func TestMain(m *testing.M) {
	if os.Getenv("RIME_CLI_MAIN") == "1" {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// Three `rime node` processes, each in its own network namespace, keep a
// linearizable channel while the first node's link is cut and restored,
// and end with identical replicas.
func TestThreeNamespacesWithAPartition(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces are not usable here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := netns.Start(ctx, netns.Config{
		Command: []string{self}, Env: []string{"RIME_CLI_MAIN=1"},
		Prefix: fmt.Sprintf("rt%d", os.Getpid()%1000), Subnet: fmt.Sprintf("10.78.%d", os.Getpid()%250),
		Plan: "../../examples/collabdoc", Classes: []string{"document"},
		NodeClasses: []string{"workstation", "laptop", "laptop"}, Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitVoters(ctx, 0, "document", 3); err != nil {
		t.Fatal(err)
	}

	rec := workload.NewRecorder("document")
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range c.N() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := c.Channel(i, "document")
			rec.Client(wctx, i+1, func() string { return c.Ready(i).ID }, func() protocols.Channel { return ch }, workload.DefaultConfig())
		}()
	}
	waitAcks(t, ctx, rec, 50)
	if err := c.Isolate(0); err != nil {
		t.Fatal(err)
	}
	at := len(rec.Acked())
	waitAcks(t, ctx, rec, at+50) // the majority side goes on
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	waitAcks(t, ctx, rec, len(rec.Acked())+50)

	// WAN latency, loss and duplication from rime's own network layer
	// (no netem here): the cluster goes on, and no update is acknowledged
	// sooner than one delay (the leader's entry must reach a follower).
	const delay = 20 * time.Millisecond
	wan := faultnet.Faults{Delay: delay, Jitter: 10 * time.Millisecond, Loss: 0.05, Duplicate: 0.02}
	for i := range c.N() {
		if err := c.SetFaults(ctx, i, wan); err != nil {
			t.Fatal(err)
		}
	}
	since := rec.Now()
	waitAcks(t, ctx, rec, len(rec.Acked())+30)
	until := rec.Now()
	for i := range c.N() {
		if err := c.SetFaults(ctx, i, faultnet.Faults{}); err != nil {
			t.Fatal(err)
		}
	}
	slowed := 0
	for _, op := range rec.Ops() {
		if op.Call > since && op.Return > 0 && op.Return < until && op.Outcome == check.OK && op.Kind == check.Append {
			slowed++
			if took := time.Duration(op.Return - op.Call); took < delay {
				t.Errorf("an update was acknowledged in %v under a %v delay", took, delay)
			}
		}
	}
	if slowed == 0 {
		t.Fatal("no update was both sent and acknowledged while the faults were in force")
	}
	stop()
	wg.Wait()

	h := check.History{Ops: rec.Ops()}
	for i := range c.N() {
		log, err := rec.SessionLog(ctx, fmt.Sprint("final ", i), c.Channel(i, "document"))
		if err != nil {
			t.Fatalf("node %d's final state: %v\n%s", i, err, c.Stderr(i))
		}
		h.Final = append(h.Final, check.Replica{Node: c.Ready(i).ID, State: map[string][]string{"document": log}})
	}
	for _, v := range rec.StreamViolations() {
		t.Error(v)
	}
	lin, err := check.Linearizable(h, check.DefaultLinearizableConfig())
	if err != nil || !lin.OK {
		t.Fatalf("not linearizable: %v %+v", err, lin)
	}
	conv, err := check.Convergence(h, check.ConvergenceConfig{})
	if err != nil || !conv.OK {
		t.Fatalf("replicas differ: %v %+v", err, conv)
	}
	t.Logf("%d operations, %d acknowledged; linearizable; replicas identical", len(h.Ops), len(rec.Acked()))
}

// waitAcks waits for n acknowledged updates.
func waitAcks(t *testing.T, ctx context.Context, rec *workload.Recorder, n int) {
	t.Helper()
	for {
		k, next := rec.AckCount()
		if k >= n {
			return
		}
		select {
		case <-next:
		case <-ctx.Done():
			t.Fatalf("only %d of %d updates acknowledged", k, n)
		}
	}
}
