package causal_test

import (
	"fmt"

	"github.com/rime-dev/rime/causal"
)

// Three nodes: b answers a; c receives the answer before the question and
// holds it back until the question arrives.
func Example() {
	a, _ := causal.New(causal.DefaultConfig("a"))
	b, _ := causal.New(causal.DefaultConfig("b"))
	c, _ := causal.New(causal.DefaultConfig("c"))

	question := a.Broadcast([]byte("lunch?")).Send[0]
	b.Step(question)
	answer := b.Broadcast([]byte("yes")).Send[0]

	// The driver moves bytes; the core sees decoded messages.
	wire, _ := answer.MarshalBinary()
	m, _ := causal.DecodeMsg(wire)
	rd, _ := c.Step(m)
	fmt.Println("delivered:", len(rd.Deliver), "waiting:", c.Pending()[0].ID, "for", c.Pending()[0].Missing)

	rd, _ = c.Step(question)
	for _, m := range rd.Deliver {
		fmt.Printf("%v %s\n", m.ID, m.Payload)
	}
	// Output:
	// delivered: 0 waiting: b:1 for {a:1}
	// a:1 lunch?
	// b:1 yes
}
