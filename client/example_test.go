package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/checkpointedchannel"
)

// exampleNode stands in for a running node (node.Node.Channel is the
// lookup an application in the node's process is given).
func exampleNode() *testNode {
	n, err := buildNode(checkpointedchannel.DefaultConfig(), "notes")
	if err != nil {
		panic(err)
	}
	return n
}

// An application in the node's process opens a class's channel and
// submits an update, which comes back as an Update event: that is its
// acknowledgement. Sync is then a read barrier.
func Example() {
	node := exampleNode()
	defer node.close()
	ctx := context.Background()

	c := client.NewLocal(node.lookup)
	ch, err := c.Open(ctx, "notes")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()

	if err := ch.Submit(ctx, []byte("buy milk")); err != nil {
		fmt.Println(err)
		return
	}
	for ev := range ch.Events() {
		fmt.Printf("%s %d %q\n", ev.Kind, ev.Seq, ev.Data)
		if ev.Kind == protocols.Update && string(ev.Data) == "buy milk" {
			break
		}
	}
	// Every update delivered anywhere before the call is at or below seq,
	// and waiting in Events.
	seq, err := ch.Sync(ctx)
	fmt.Println("synced at", seq, err)
	// Output:
	// initialize 0 ""
	// update 1 "buy milk"
	// synced at 1 <nil>
}

// notes is a Replica: the notes, one per update.
type notes struct{ list []string }

func (n *notes) Apply(u []byte) { n.list = append(n.list, string(u)) }

func (n *notes) Checkpoint() []byte {
	b, _ := json.Marshal(n.list) // a []string always marshals
	return b
}

func (n *notes) Restore(cp []byte) {
	n.list = nil
	if cp != nil {
		// The checkpoint is one this replica's Checkpoint wrote.
		_ = json.Unmarshal(cp, &n.list)
	}
}

// An application in another process reaches the node over HTTP, with the
// same API; Run keeps its replica up to date until the channel ends.
func ExampleRun() {
	node := exampleNode()
	defer node.close()
	srv := httptest.NewServer(client.NewHandler(node.lookup, nil))
	defer srv.Close()
	defer srv.CloseClientConnections()
	ctx := context.Background()

	c, err := client.NewHTTP(srv.URL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	reader, err := c.Open(ctx, "notes")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reader.Close()
	writer, err := c.Open(ctx, "notes")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer writer.Close()
	for _, u := range []string{"milk", "eggs"} {
		if err := writer.Submit(ctx, []byte(u)); err != nil {
			fmt.Println(err)
			return
		}
	}
	// The writer's updates are in once they come back to it; a Sync on
	// the reader then has them queued for Run.
	for ev := range writer.Events() {
		if ev.Kind == protocols.Update && ev.Seq == 2 {
			break
		}
	}
	if _, err := reader.Sync(ctx); err != nil {
		fmt.Println(err)
		return
	}
	// Run returns when the channel ends; here the node closes it.
	node.chans["notes"].Close()
	r := &notes{}
	err = client.Run(ctx, reader, r)
	fmt.Println(r.list)
	fmt.Println(err)
	// Output:
	// [milk eggs]
	// client: class notes: channel ended: layer closed (closed)
}
