// Package teamchat is the team-chat example's application: on every node
// a member posts messages (a causal log, sealed end to end), now and then
// adds a channel (a set, sealed), says it is typing (a register) and how
// far it has read (a map). Nodes the group does not trust with the
// confidential classes (teamchat's relays) keep and forward them as
// ciphertext and can open no session on them; the application shows
// that too. `rime up examples/teamchat` runs it against the nodes.
package teamchat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/protocols"
)

// The app's classes.
const (
	Messages = "messages"
	Channels = "channels"
	Typing   = "typing"
	Reads    = "reads"
)

// Classes are the classes the app uses, the first one it cannot run
// without.
var Classes = []string{Messages, Channels, Typing, Reads}

// Node is what the app needs of a node.
type Node interface {
	Channel(class string) (protocols.Channel, error)
}

// member is one node's views of the classes; nil where the node does not
// host the class, sealed where it holds only ciphertext.
type member struct {
	name  string
	views map[string]*client.Convergent

	mu     sync.Mutex
	sealed map[string]bool
}

// Run runs a member on every node, each posting every interval, and
// writes what each node sees once a second, until ctx ends.
func Run(ctx context.Context, nodes []Node, every time.Duration, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	var members []*member
	for i, n := range nodes {
		m := &member{name: fmt.Sprintf("node-%d", i+1), views: map[string]*client.Convergent{}, sealed: map[string]bool{}}
		for _, class := range Classes {
			ch, err := n.Channel(class)
			if err != nil {
				continue
			}
			// A node holding only ciphertext cannot connect; find out once
			// rather than retry for ever.
			s, err := ch.Connect(ctx)
			if errors.Is(err, protocols.ErrNoKey) {
				m.sealed[class] = true
				continue
			}
			if err != nil {
				return err
			}
			s.Disconnect()
			v := client.NewConvergent(ch)
			m.views[class] = v
			wg.Go(func() { v.Run(ctx) })
		}
		members = append(members, m)
		wg.Go(func() { m.post(ctx, every) })
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fmt.Fprintf(out, "teamchat: %s\n", line(members))
	}
}

// post writes one message a tick, and the rest now and then.
func (m *member) post(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	submit := func(class string, op crdt.Op) {
		v := m.views[class]
		if v == nil {
			return
		}
		// Bounded, so that a class that cannot take the op now (not yet
		// connected; a node waiting for the group's keys) does not hold
		// the others back; the next tick tries again.
		sctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		if err := v.Submit(sctx, op); errors.Is(err, protocols.ErrNoKey) {
			m.mu.Lock()
			m.sealed[class] = true
			m.mu.Unlock()
		}
	}
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		submit(Typing, crdt.RegisterSet{Value: []byte(m.name)})
		submit(Messages, crdt.LogAppend{Data: fmt.Appendf(nil, "%s: message %d", m.name, n)})
		submit(Reads, crdt.MapPut{Key: m.name, Value: fmt.Append(nil, n)})
		if n%10 == 1 {
			submit(Channels, crdt.SetAdd{Elem: fmt.Sprintf("#topic-%d", n/10%3)})
		}
	}
}

// line says, per class, what each node sees: messages and channels
// held, who is typing, how many read marks; "sealed" where the node
// holds only ciphertext, "-" where it does not host the class.
func line(ms []*member) string {
	var parts []string
	for _, class := range Classes {
		var per []string
		for _, m := range ms {
			v := m.views[class]
			m.mu.Lock()
			sealed := m.sealed[class]
			m.mu.Unlock()
			switch {
			case sealed:
				per = append(per, "sealed")
			case v == nil:
				per = append(per, "-")
			default:
				per = append(per, describe(v.State()))
			}
		}
		parts = append(parts, fmt.Sprintf("%s [%s]", class, strings.Join(per, " ")))
	}
	return strings.Join(parts, "; ")
}

func describe(st crdt.State) string {
	switch s := st.(type) {
	case *crdt.Log:
		return fmt.Sprint(s.Len())
	case *crdt.Set:
		return fmt.Sprint(s.Len())
	case *crdt.Register:
		v, _ := s.Get()
		return fmt.Sprintf("%q", v)
	case *crdt.Map:
		return fmt.Sprint(s.Len())
	case nil:
		return "?"
	}
	return string(st.Type())
}
