package hubrelay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/hubrelay"
)

func TestConfigValidate(t *testing.T) {
	if err := hubrelay.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*hubrelay.Config)
	}{
		{"AttachTimeout", func(c *hubrelay.Config) { c.AttachTimeout = 0 }},
		{"ReattachMin", func(c *hubrelay.Config) { c.ReattachMax = c.ReattachMin / 2 }},
		{"HeartbeatTimeout", func(c *hubrelay.Config) { c.HeartbeatTimeout = c.Heartbeat }},
		{"HandshakeTimeout", func(c *hubrelay.Config) { c.HandshakeTimeout = -time.Second }},
		{"IdleTimeout", func(c *hubrelay.Config) { c.IdleTimeout = 0 }},
		{"KeepAlive", func(c *hubrelay.Config) { c.KeepAlive = c.IdleTimeout }},
		{"MaxStreams", func(c *hubrelay.Config) { c.MaxStreams = 0 }},
		{"PacketQueue", func(c *hubrelay.Config) { c.PacketQueue = 0 }},
	} {
		c := hubrelay.DefaultConfig()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming it", tc.field, err)
		}
	}
}

// relayerFunc is a Relayer that is never called: Validate must catch
// what is wrong before anything dials.
type relayerFunc func(context.Context, string) (protocols.RelayLink, error)

func (f relayerFunc) Relay(ctx context.Context, g string) (protocols.RelayLink, error) {
	return f(ctx, g)
}

func TestProvisionAndValidate(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := identity.Generate()
	never := relayerFunc(func(context.Context, string) (protocols.RelayLink, error) {
		t.Fatal("Validate dialled the relay")
		return nil, nil
	})
	good := func() *protocols.Env {
		return &protocols.Env{
			Node: protocols.Node{ID: id.ID(), Key: id.Key}, App: "teamchat", Group: "team", Class: "messages",
			GroupSecret: secret(), Params: map[string]any{"relays": float64(2)}, Relayer: never,
		}
	}
	tr := hubrelay.New(hubrelay.DefaultConfig())
	if err := tr.Provision(good()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	// The layers above take the endpoint when they are provisioned: it
	// exists, named by the node's relay address, and nothing was dialled
	// (never fails the test if the relay is used).
	want, err := hubrelay.Addr(id.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ep := tr.Endpoint(); ep == nil || ep.Addr() != want {
		t.Fatalf("endpoint after Provision: %v, want one at %s", ep, want)
	}
	tr.Close()
	for _, tc := range []struct {
		name, want string
		edit       func(*protocols.Env)
	}{
		{"no relayer", "Relayer", func(e *protocols.Env) { e.Relayer = nil }},
		{"no group", "Group", func(e *protocols.Env) { e.Group = "" }},
		{"ID of another key", "not the ID", func(e *protocols.Env) { e.Node.ID = other.ID() }},
		{"no key", "Key", func(e *protocols.Env) { e.Node.Key = nil }},
		{"too many relays", "relays", func(e *protocols.Env) { e.Params["relays"] = float64(4) }},
		{"unknown parameter", "unknown parameter", func(e *protocols.Env) { e.Params["fanout"] = float64(2) }},
		{"no group secret", "secret", func(e *protocols.Env) { e.GroupSecret = nil }},
	} {
		env := good()
		tc.edit(env)
		tr := hubrelay.New(hubrelay.DefaultConfig())
		err := tr.Provision(env)
		if err == nil {
			err = tr.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}

// A node that cannot attach anywhere fails to start, saying why.
func TestStartWithoutHub(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := hubrelay.DefaultConfig()
	cfg.AttachTimeout = 50 * time.Millisecond
	tr := hubrelay.New(cfg)
	down := relayerFunc(func(context.Context, string) (protocols.RelayLink, error) {
		return nil, errors.New("every replica is down")
	})
	env := &protocols.Env{Node: protocols.Node{ID: id.ID(), Key: id.Key}, Group: "team", Class: "messages", GroupSecret: secret(), Relayer: down}
	if err := tr.Provision(env); err != nil {
		t.Fatal(err)
	}
	err = tr.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "every replica is down") {
		t.Fatalf("Start: %v, want the attach error", err)
	}
	if st := tr.Stats(); st.Attached || st.Attaches != 0 {
		t.Fatalf("stats %+v", st)
	}
	tr.Close()
}
