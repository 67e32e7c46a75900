package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/spec"
)

// newPlanner returns a fresh loader, the built-in catalogue and a planner.
func newPlanner(t testing.TB) (*spec.Loader, *spec.Catalogue, *engine.Planner) {
	t.Helper()
	l, err := spec.NewLoader()
	if err != nil {
		t.Fatalf("NewLoader: %v", err)
	}
	cat, err := l.LoadCatalogue(protocols.SpecFS(), protocols.SpecPrefix)
	if err != nil {
		t.Fatalf("LoadCatalogue: %v", err)
	}
	return l, cat, engine.New(l, cat)
}

// loadSrc loads an inline app.
func loadSrc(t testing.TB, l *spec.Loader, src string) *spec.App {
	t.Helper()
	app, err := l.LoadAppSource(spec.Source{Name: "app.cue", Data: []byte(src)})
	if err != nil {
		t.Fatalf("LoadAppSource: %v\n%s", err, src)
	}
	return app
}

// server is a node class every built-in protocol can use as a host.
const server = `{count: %d, mobility: "static", connectivity: "always", reachable: "public", trust: "member", storage: "durable", power: "mains"}`

// theoremApp writes a one-class app. extraNodes is spliced into `nodes`.
func theoremApp(servers int, extraNodes string, partitions bool, failures, class string) string {
	return fmt.Sprintf(`app: {
	name: "t"
	group: "g"
	environment: {
		nodes: {
			server: %s
			%s
		}
		network: partitions: %v
		failures: %q
	}
	data: d: %s
}
`, fmt.Sprintf(server, servers), extraNodes, partitions, failures, class)
}

func dumpPlan(cp engine.ClassPlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "satisfiable=%v\n", cp.Satisfiable)
	for _, l := range cp.Stack {
		fmt.Fprintf(&b, "  layer %s %s %v provides %v\n", l.Layer, l.Protocol, l.Params, l.Provides)
	}
	for _, s := range cp.Proof {
		fmt.Fprintf(&b, "  proof: %s | %s\n", s.Claim, s.By)
	}
	for _, u := range cp.Unmet {
		fmt.Fprintf(&b, "  unmet: req=%s theorem=%q cap=%q: %s\n", u.Requirement, u.Theorem, u.Capability, u.Reason)
	}
	return b.String()
}

type theoremCase struct {
	name  string
	src   string
	fires bool
	// wantSat, if set, also asserts satisfiability.
	wantSat *bool
}

func yes() *bool { b := true; return &b }

// theoremCases lists, per theorem (by its field name in theorems.cue), apps
// where it must fire and apps where it must stay silent.
func theoremCases() map[string][]theoremCase {
	const cr = "crash-recovery"
	return map[string][]theoremCase{
		"CAP": {
			{name: "linearizable always under partitions", fires: true,
				src: theoremApp(3, "", true, cr, `{consistency: "linearizable", available: "always", type: "map"}`)},
			{name: "linearizable always without partitions",
				src: theoremApp(3, "", false, cr, `{consistency: "linearizable", available: "always", type: "map"}`)},
			{name: "linearizable majority under partitions",
				src: theoremApp(3, "", true, cr, `{consistency: "linearizable", available: "majority", type: "map"}`), wantSat: yes()},
			{name: "sequential always under partitions (HAT, not CAP)",
				src: theoremApp(3, "", true, cr, `{consistency: "sequential", available: "always", type: "map"}`)},
		},
		"HATUnavailable": {
			{name: "sequential always under partitions", fires: true,
				src: theoremApp(3, "", true, cr, `{consistency: "sequential", available: "always", type: "map"}`)},
			{name: "partitions from an intermittent node", fires: true,
				src: theoremApp(3, `laptop: {count: 1, connectivity: "intermittent", trust: "member", storage: "durable"}`, false, cr,
					`{consistency: "sequential", available: "always", type: "map"}`)},
			{name: "sequential majority under partitions",
				src: theoremApp(3, "", true, cr, `{consistency: "sequential", available: "majority", type: "map"}`), wantSat: yes()},
			{name: "causal always under partitions (sticky, not unavailable)",
				src: theoremApp(3, "", true, cr, `{consistency: "causal", available: "always", type: "map"}`)},
		},
		"HATSticky": {
			{name: "causal always under partitions", fires: true,
				src: theoremApp(3, "", true, cr, `{consistency: "causal", available: "always", type: "map"}`)},
			{name: "read-your-writes always under partitions", fires: true,
				src: theoremApp(3, "", true, cr, `{consistency: "read-your-writes", available: "always", type: "map"}`)},
			{name: "causal always without partitions",
				src: theoremApp(3, "", false, cr, `{consistency: "causal", available: "always", type: "map"}`)},
			{name: "eventual always under partitions (total)",
				src: theoremApp(3, "", true, cr, `{consistency: "eventual", available: "always", type: "map"}`), wantSat: yes()},
		},
		"CALM": {
			{name: "state machine always under partitions", fires: true,
				src: theoremApp(3, "", true, cr, `{consistency: "eventual", available: "always", type: "state-machine"}`)},
			{name: "state machine majority under partitions",
				src: theoremApp(3, "", true, cr, `{consistency: "eventual", available: "majority", type: "state-machine"}`)},
			{name: "map always under partitions",
				src: theoremApp(3, "", true, cr, `{consistency: "eventual", available: "always", type: "map"}`), wantSat: yes()},
		},
		"DLS": {
			{name: "byzantine failures, 3 nodes, linearizable", fires: true,
				src: theoremApp(3, "", false, "byzantine", `{consistency: "linearizable", available: "majority", type: "map"}`)},
			{name: "byzantine nodes, state machine", fires: true,
				src: theoremApp(4, `bad: {count: 2, trust: "byzantine", storage: "durable", connectivity: "always", reachable: "public", mobility: "static"}`, false, "byzantine",
					`{consistency: "eventual", available: "majority", type: "state-machine"}`)},
			{name: "byzantine failures, 4 nodes",
				src: theoremApp(4, "", false, "byzantine", `{consistency: "linearizable", available: "majority", type: "map"}`)},
			{name: "byzantine failures, no agreement",
				src: theoremApp(3, "", false, "byzantine", `{consistency: "eventual", available: "majority", type: "map"}`)},
			{name: "crash failures, 3 nodes",
				src: theoremApp(3, "", false, cr, `{consistency: "linearizable", available: "majority", type: "map"}`), wantSat: yes()},
		},
		"DurableCopies": {
			{name: "durability 3 with 3 keepers", fires: true,
				src: theoremApp(3, "", false, cr, `{consistency: "eventual", durability: 3, available: "always", type: "map"}`)},
			{name: "volatile nodes do not keep", fires: true,
				src: theoremApp(1, `phone: {count: 5, storage: "volatile", connectivity: "always"}`, false, cr,
					`{consistency: "eventual", durability: 1, available: "always", type: "map"}`)},
			{name: "durability 2 with 3 keepers",
				src: theoremApp(3, "", false, cr, `{consistency: "eventual", durability: 2, available: "always", type: "map"}`), wantSat: yes()},
			{name: "crash-stop: every node keeps",
				src: theoremApp(1, `phone: {count: 5, storage: "volatile", connectivity: "always"}`, false, "crash-stop",
					`{consistency: "eventual", durability: 1, available: "always", type: "map"}`)},
		},
		"QuorumVoters": {
			{name: "linearizable durability 2 with 3 keepers", fires: true,
				src: theoremApp(3, "", false, cr, `{consistency: "linearizable", durability: 2, available: "majority", type: "map"}`)},
			{name: "linearizable durability 1 with 3 keepers",
				src: theoremApp(3, "", false, cr, `{consistency: "linearizable", durability: 1, available: "majority", type: "map"}`), wantSat: yes()},
			{name: "eventual durability 2 with 3 keepers (no agreement)",
				src: theoremApp(3, "", false, cr, `{consistency: "eventual", durability: 2, available: "always", type: "map"}`)},
		},
		"ConfidentialNeedsEncryption": {
			{name: "confidential with a curious node", fires: true, wantSat: yes(),
				src: theoremApp(3, `cloud: {count: 1, mobility: "static", connectivity: "always", reachable: "public", trust: "honest-but-curious", storage: "durable", power: "mains"}`, false, cr,
					`{consistency: "eventual", available: "always", confidential: true, type: "map"}`)},
			{name: "confidential among members only", wantSat: yes(),
				src: theoremApp(3, "", false, cr, `{consistency: "eventual", available: "always", confidential: true, type: "map"}`)},
			{name: "not confidential with a curious node",
				src: theoremApp(3, `cloud: {count: 1, mobility: "static", connectivity: "always", reachable: "public", trust: "honest-but-curious", storage: "durable", power: "mains"}`, false, cr,
					`{consistency: "eventual", available: "always", type: "map"}`)},
		},
		"FLP": {
			{name: "consensus in the stack", fires: true, wantSat: yes(),
				src: theoremApp(3, "", false, cr, `{consistency: "linearizable", durability: 1, available: "majority", type: "state-machine"}`)},
			{name: "no consensus in the stack", wantSat: yes(),
				src: theoremApp(3, "", true, cr, `{consistency: "eventual", available: "always", type: "map"}`)},
		},
	}
}

func TestTheorems(t *testing.T) {
	l, cat, pl := newPlanner(t)
	cases := theoremCases()

	// Every theorem in theorems.cue has a case where it fires and one
	// where it stays silent, and every case names a real theorem.
	byName := map[string]spec.Theorem{}
	for _, th := range l.Theorems {
		byName[th.Name] = th
		var fire, silent bool
		for _, c := range cases[th.Name] {
			fire = fire || c.fires
			silent = silent || !c.fires
		}
		if !fire || !silent {
			t.Errorf("theorem %s (%q) lacks a test case where it fires (%v) or one where it is silent (%v)", th.Name, th.Title, fire, silent)
		}
	}
	if len(l.Theorems) == 0 {
		t.Fatal("loader decoded no theorems")
	}
	for name := range cases {
		if _, ok := byName[name]; !ok {
			t.Errorf("test cases for %s, which theorems.cue does not define", name)
		}
	}

	for _, name := range sortedNames(cases) {
		th, ok := byName[name]
		if !ok {
			continue
		}
		for _, c := range cases[name] {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				app := loadSrc(t, l, c.src)
				plan := pl.Plan(app)
				if len(plan.Classes) != 1 {
					t.Fatalf("want 1 class plan, got %d", len(plan.Classes))
				}
				cp := plan.Classes[0]
				defer func() {
					if t.Failed() {
						t.Logf("plan:\n%s", dumpPlan(cp))
					}
				}()
				if c.wantSat != nil && cp.Satisfiable != *c.wantSat {
					t.Errorf("satisfiable = %v, want %v", cp.Satisfiable, *c.wantSat)
				}
				switch th.Effect {
				case spec.Forbid:
					got := false
					for _, u := range cp.Unmet {
						if u.Theorem == th.Title {
							got = true
							if u.Requirement != th.Blocks {
								t.Errorf("unmet requirement = %q, want %q", u.Requirement, th.Blocks)
							}
							if u.Reason == "" || u.Cite == "" || u.Source == "" {
								t.Errorf("unmet entry lacks reason, cite or source: %+v", u)
							}
						}
					}
					if got != c.fires {
						t.Errorf("%s in Unmet = %v, want %v", th.Title, got, c.fires)
					}
					if c.fires && cp.Satisfiable {
						t.Errorf("a forbid theorem fired but the class is satisfiable")
					}
				case spec.Demand:
					if th.Demand == "" {
						t.Fatalf("demand theorem %s has no capability", th.Name)
					}
					step := false
					for _, s := range cp.Proof {
						if strings.Contains(s.Claim, "must provide "+th.Demand) {
							step = true
						}
					}
					if step != c.fires {
						t.Errorf("proof step demanding %s = %v, want %v", th.Demand, step, c.fires)
					}
					if c.fires {
						if !cp.Satisfiable {
							// An unsatisfiable class must say the theorem's demand went unmet.
							named := false
							for _, u := range cp.Unmet {
								named = named || u.Theorem == th.Title
							}
							if !named {
								t.Errorf("class unsatisfiable and %s not named in Unmet", th.Title)
							}
							break
						}
						prov := 0
						for _, ly := range cp.Stack {
							p, ok := cat.Lookup(ly.Protocol)
							if !ok {
								t.Errorf("stack protocol %s not in catalogue", ly.Protocol)
								continue
							}
							for _, pc := range p.Provides {
								if pc == th.Demand {
									prov++
								}
							}
						}
						if prov == 0 {
							t.Errorf("no layer provides demanded capability %s", th.Demand)
						}
					}
				case spec.Caveat:
					caveat := false
					for _, s := range cp.Proof {
						if strings.HasPrefix(s.Claim, "caveat:") && strings.HasPrefix(s.By, th.Title) {
							caveat = true
						}
					}
					consensus := false
					for _, ly := range cp.Stack {
						consensus = consensus || ly.Layer == "consensus"
					}
					if consensus != c.fires {
						t.Errorf("stack has a consensus layer = %v, but the case expects %v", consensus, c.fires)
					}
					if caveat != consensus {
						t.Errorf("caveat %s in proof = %v, but consensus layer in stack = %v", th.Title, caveat, consensus)
					}
				default:
					t.Fatalf("unknown effect %q", th.Effect)
				}
			})
		}
	}
}

// Specific demand expectations from the brief: local-replica comes from
// crdt-replication and encryption from e2e-encryption.
func TestDemandProviders(t *testing.T) {
	l, _, pl := newPlanner(t)
	for _, c := range []struct{ src, proto string }{
		{theoremCases()["HATSticky"][0].src, "crdt-replication"},
		{theoremCases()["ConfidentialNeedsEncryption"][0].src, "e2e-encryption"},
	} {
		cp := pl.Plan(loadSrc(t, l, c.src)).Classes[0]
		found := false
		for _, ly := range cp.Stack {
			found = found || ly.Protocol == c.proto
		}
		if !found {
			t.Errorf("want %s in the stack:\n%s", c.proto, dumpPlan(cp))
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}
