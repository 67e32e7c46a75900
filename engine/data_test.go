package engine

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/spec"
)

// Every instance read from decoded data (fromData) must be the instance
// read from the CUE value, field by field, as finish read it before.
func TestInstancesFromDataMatchCUE(t *testing.T) {
	l, err := spec.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := l.LoadCatalogue(protocols.SpecFS(), protocols.SpecPrefix)
	if err != nil {
		t.Fatal(err)
	}
	pl := New(l, cat)
	rng := rand.New(rand.NewSource(3))
	compared := 0
	for range 4 {
		app, err := l.LoadAppSource(spec.Source{Name: "app.cue", Data: []byte(internalRandomApp(rng))})
		if err != nil {
			t.Fatal(err)
		}
		r := pl.newRun(app)
		r.plan()
		for key, f := range r.finished {
			if f.in == nil {
				continue
			}
			want, err := r.fromCUE(f.in.proto, f.in.params, f.in.value)
			if err != nil {
				t.Fatalf("%s: the CUE path fails where the data path did not: %v", key, err)
			}
			if !reflect.DeepEqual(f.in, want) {
				t.Errorf("%s: from data %+v\nfrom CUE %+v", key, f.in, want)
			}
			compared++
		}
	}
	if compared < 50 {
		t.Errorf("only %d instances compared", compared)
	}
}

// internalRandomApp writes an app of 30 classes drawn from the whole
// requirement space, in an environment with hosts of every kind.
func internalRandomApp(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString(`app: {
	name: "rnd"
	group: "g"
	environment: {
		nodes: {
			phone: {count: 20, mobility: "mobile", connectivity: "intermittent", reachable: "nat", trust: "member", storage: "durable", power: "battery"}
			cloud: {count: 1, mobility: "static", connectivity: "always", reachable: "public", trust: "honest-but-curious", storage: "durable", power: "mains"}
			box: {count: 3, mobility: "static", connectivity: "always", reachable: "nat", trust: "member", storage: "volatile", power: "mains"}
		}
		network: partitions: true
		failures: "crash-recovery"
	}
	data: {
`)
	models := []string{"linearizable", "sequential", "causal", "pram", "read-your-writes", "monotonic-reads", "monotonic-writes", "writes-follow-reads", "eventual"}
	avail := []string{"always", "majority", "none"}
	types := []string{"log", "register", "map", "set", "counter", "text", "state-machine"}
	for i := range 30 {
		fmt.Fprintf(&b, "\t\tc%d: {consistency: %q, durability: %d, available: %q, confidential: %t, type: %q}\n", i,
			models[rng.Intn(len(models))], rng.Intn(5), avail[rng.Intn(len(avail))], rng.Intn(2) == 0, types[rng.Intn(len(types))])
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}
