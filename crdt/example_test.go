package crdt_test

import (
	"fmt"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/crdt/vv"
)

// Two replicas of a map: one applies operations and ships their deltas;
// the other was offline and catches up by anti-entropy, receiving only
// what it lacks.
func Example() {
	phone, laptop := crdt.NewMap(), crdt.NewMap()

	// A local operation changes the replica and yields the delta to send.
	delta, err := phone.Apply(crdt.Stamp{Replica: "phone", Time: 1000}, crdt.MapPut{Key: "title", Value: []byte("Holidays")})
	if err != nil {
		panic(err)
	}
	wire, _ := delta.MarshalBinary()

	// The laptop decodes and merges it (in any order, any number of times).
	d, err := crdt.Decode(wire)
	if err != nil {
		panic(err)
	}
	laptop.Merge(d)

	// The laptop goes offline; the phone keeps writing.
	for i := range 3 {
		phone.Apply(crdt.Stamp{Replica: "phone", Time: uint64(2000 + i)}, crdt.MapPut{Key: fmt.Sprint("photo", i), Value: []byte("...")})
	}
	phone.Apply(crdt.Stamp{Replica: "phone", Time: 3000}, crdt.MapDelete{Key: "photo0"})

	// Back online, the laptop sends its context; the phone answers with
	// what the laptop lacks.
	ctx, _ := laptop.Context().MarshalBinary()
	var peer vv.Dots
	if err := peer.UnmarshalBinary(ctx); err != nil {
		panic(err)
	}
	missing := phone.DeltaSince(&peer)
	fmt.Println("laptop lacks", missing.Context())
	laptop.Merge(missing)

	fmt.Println(laptop.Keys(), crdt.Equal(phone, laptop))
	// Output:
	// laptop lacks {phone:2-5}
	// [photo1 photo2 title] true
}
