package client_test

import (
	"context"
	"log/slog"
	"sort"
	"testing"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/checkpointedchannel"
	"github.com/rime-dev/rime/protocols/memlog"
)

// testNode is a node's classes as the client sees them: each class a real
// checkpointed channel over its own memlog.Log.
type testNode struct {
	logs  map[string]*memlog.Log
	chans map[string]protocols.Channel
}

// newTestNode provisions and starts one checkpointed channel per class.
func newTestNode(t testing.TB, cfg checkpointedchannel.Config, classes ...string) *testNode {
	t.Helper()
	n, err := buildNode(cfg, classes...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.close)
	return n
}

func buildNode(cfg checkpointedchannel.Config, classes ...string) (*testNode, error) {
	n := &testNode{logs: map[string]*memlog.Log{}, chans: map[string]protocols.Channel{}}
	for _, class := range classes {
		log := memlog.New()
		inst := checkpointedchannel.NewModule(cfg).New()
		env := &protocols.Env{App: "test", Group: "test", Class: class, Below: []protocols.Instance{log}, Logger: slog.New(slog.DiscardHandler)}
		if err := inst.Provision(env); err != nil {
			return nil, err
		}
		if err := inst.Validate(); err != nil {
			return nil, err
		}
		if err := inst.Start(context.Background()); err != nil {
			return nil, err
		}
		n.logs[class] = log
		n.chans[class] = inst.(protocols.Channel)
	}
	return n, nil
}

func (n *testNode) close() {
	for class, ch := range n.chans {
		ch.Close()
		n.logs[class].Close()
	}
}

// lookup is what the node agent gives package client.
func (n *testNode) lookup(class string) (protocols.Channel, error) {
	if ch, ok := n.chans[class]; ok {
		return ch, nil
	}
	known := make([]string, 0, len(n.chans))
	for c := range n.chans {
		known = append(known, c)
	}
	sort.Strings(known)
	return nil, &client.UnknownClassError{Class: class, Known: known}
}

// testConfig is the default channel config with checkpoints every
// checkpointEvery updates.
func testConfig(checkpointEvery uint64) checkpointedchannel.Config {
	cfg := checkpointedchannel.DefaultConfig()
	cfg.CheckpointEvery = checkpointEvery
	return cfg
}
