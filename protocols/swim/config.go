package swim

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config is the timing of one swim instance. Profiles: DefaultConfig
// (memberlist's LAN values) and WANConfig (its WAN values); tests use
// much shorter ones. A Config is copied into the instance, so changing
// it afterwards changes nothing.
type Config struct {
	// ProbeInterval is SWIM's protocol period: each node probes one other
	// member per interval. Shorter detects failures sooner for more
	// traffic.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for a direct ack before it
	// asks other members to probe indirectly: about the 99th percentile
	// round trip. It must be below ProbeInterval, which also has to hold
	// the indirect probes.
	ProbeTimeout time.Duration
	// SuspicionMult sets how long a member stays suspect before it is
	// declared dead: SuspicionMult * log10(N) * ProbeInterval, shortened
	// as other members confirm the suspicion. Higher gives a slow but live
	// member more time to refute.
	SuspicionMult int
	// GossipInterval is how often pending updates are sent to a few
	// random members, besides those piggybacked on probes.
	GossipInterval time.Duration
	// PushPullInterval is how often a node swaps its full state with one
	// random member (anti-entropy): it repairs whatever gossip missed.
	PushPullInterval time.Duration
	// ReconnectInterval is how often a node tries to reach one member it
	// believes dead. memberlist never probes a dead member again, so
	// without this the two sides of a healed partition would stay apart.
	ReconnectInterval time.Duration
	// LeaveTimeout bounds how long Close waits for its goodbye to go
	// out; the members it does not reach see it as dead instead of left.
	LeaveTimeout time.Duration
	// Retention is how long a dead or left member stays in the view (and
	// a dead one is retried, see ReconnectInterval) before it is
	// forgotten.
	Retention time.Duration
}

// DefaultConfig is memberlist's LAN profile, which converges in a few
// seconds for a hundred members (see LIBRARIES.md), with a reconnect every
// 10 s and dead members kept for a day.
func DefaultConfig() Config {
	lan := memberlist.DefaultLANConfig()
	return Config{
		ProbeInterval:     lan.ProbeInterval,    // 1 s
		ProbeTimeout:      lan.ProbeTimeout,     // 500 ms
		SuspicionMult:     lan.SuspicionMult,    // 4
		GossipInterval:    lan.GossipInterval,   // 200 ms
		PushPullInterval:  lan.PushPullInterval, // 30 s
		ReconnectInterval: 10 * time.Second,
		LeaveTimeout:      2 * time.Second,
		Retention:         24 * time.Hour,
	}
}

// WANConfig is memberlist's WAN profile, for groups whose members talk
// across the internet (the app's `network: latency: "wan"`).
func WANConfig() Config {
	wan := memberlist.DefaultWANConfig()
	return Config{
		ProbeInterval:     wan.ProbeInterval,    // 5 s
		ProbeTimeout:      wan.ProbeTimeout,     // 3 s
		SuspicionMult:     wan.SuspicionMult,    // 6
		GossipInterval:    wan.GossipInterval,   // 500 ms
		PushPullInterval:  wan.PushPullInterval, // 60 s
		ReconnectInterval: 30 * time.Second,
		LeaveTimeout:      5 * time.Second,
		Retention:         24 * time.Hour,
	}
}

// Validate checks c; an error names the field and its value.
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"PushPullInterval", c.PushPullInterval},
		{"ReconnectInterval", c.ReconnectInterval},
		{"LeaveTimeout", c.LeaveTimeout},
		{"Retention", c.Retention},
	} {
		if d.v <= 0 {
			return fmt.Errorf("swim: config: %s = %v: must be positive", d.name, d.v)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("swim: config: ProbeTimeout = %v: must be below ProbeInterval (%v)", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("swim: config: SuspicionMult = %d: must be at least 1", c.SuspicionMult)
	}
	return nil
}
