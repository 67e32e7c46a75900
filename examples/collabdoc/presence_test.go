package collabdoc

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/internal/localcluster"
	"github.com/rime-dev/rime/protocols/builtin"
	"github.com/rime-dev/rime/spec"
)

func implementedPlan(t *testing.T) (*spec.App, *engine.Plan) {
	t.Helper()
	app, p, err := builtin.PlanImplemented("app.cue")
	if err != nil {
		t.Fatal(err)
	}
	return app, p
}

// Cursors and comments written on three nodes converge: every editor's
// replica ends with every editor's cursor and every comment, the same
// state on each.
func TestPresenceConverges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	app, p := implementedPlan(t)
	cl, err := localcluster.New(localcluster.Config{
		Plan: p, Classes: []string{CursorsClass, CommentsClass}, Group: app.Group,
		NodeClasses: []string{"workstation", "workstation", "workstation"}, DataDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var cursors, comments []*client.Convergent
	for _, n := range cl.Nodes() {
		for class, rs := range map[string]*[]*client.Convergent{CursorsClass: &cursors, CommentsClass: &comments} {
			ch, err := n.Channel(class)
			if err != nil {
				t.Fatal(err)
			}
			r := client.NewConvergent(ch)
			*rs = append(*rs, r)
			changed := r.Changed()
			go r.Run(ctx)
			// Wait for the session's Initialize before writing.
			select {
			case <-changed:
			case <-ctx.Done():
				t.Fatalf("%s: no session", class)
			}
		}
	}
	const each = 10
	for i := range cursors {
		name := fmt.Sprint("editor-", i+1)
		for k := 1; k <= each; k++ {
			if err := cursors[i].Submit(ctx, crdt.MapPut{Key: name, Value: []byte(fmt.Sprint(k))}); err != nil {
				t.Fatal(err)
			}
			if err := comments[i].Submit(ctx, crdt.LogAppend{Data: fmt.Appendf(nil, "%s: comment %d", name, k)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	converged := func(rs []*client.Convergent, ok func(*client.Convergent) bool) {
		t.Helper()
		for {
			var waits []<-chan struct{}
			for _, r := range rs {
				waits = append(waits, r.Changed())
			}
			same := true
			for _, r := range rs {
				same = same && ok(r) && bytes.Equal(r.Encoded(), rs[0].Encoded())
			}
			if same {
				return
			}
			select {
			case <-waits[0]:
			case <-waits[1]:
			case <-waits[2]:
			case <-ctx.Done():
				var got []any
				for _, r := range rs {
					got = append(got, Cursors(r), Comments(r))
				}
				t.Fatalf("replicas did not converge: %v", got)
			}
		}
	}
	converged(cursors, func(r *client.Convergent) bool {
		c := Cursors(r)
		return len(c) == 3 && c["editor-1"] == each && c["editor-2"] == each && c["editor-3"] == each
	})
	converged(comments, func(r *client.Convergent) bool { return Comments(r) == 3*each })
}
