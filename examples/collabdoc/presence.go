package collabdoc

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/crdt"
)

// The available classes of the example: each editor shows where it is in
// the document (cursors: a map from editor to line, eventual) and leaves
// a comment now and then (comments: a log, causal). Both stay writable on
// every side of a partition; the replicas converge once it heals.
const (
	CursorsClass  = "cursors"
	CommentsClass = "comments"
)

// Presence is one editor's cursor and comments: it moves its cursor to
// the document's end at each tick and comments every fifth.
type Presence struct {
	Name              string
	Cursors, Comments *client.Convergent
	Editor            *Editor
}

// Run runs the two replicas and writes until ctx ends.
func (p *Presence) Run(ctx context.Context, every time.Duration) {
	var wg sync.WaitGroup
	for _, r := range []*client.Convergent{p.Cursors, p.Comments} {
		if r != nil {
			wg.Go(func() { r.Run(ctx) })
		}
	}
	defer wg.Wait()
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.Cursors != nil {
			line := 0
			if p.Editor != nil {
				_, line, _ = p.Editor.State()
			}
			// Not yet connected or reconnecting: the next tick tries again.
			_ = p.Cursors.Submit(ctx, crdt.MapPut{Key: p.Name, Value: []byte(strconv.Itoa(line))})
		}
		if p.Comments != nil && n%5 == 0 {
			_ = p.Comments.Submit(ctx, crdt.LogAppend{Data: fmt.Appendf(nil, "%s: comment %d", p.Name, n/5)})
		}
	}
}

// Cursors reads a cursors view: editor name to line.
func Cursors(v *client.Convergent) map[string]int {
	out := map[string]int{}
	if m, ok := v.State().(*crdt.Map); ok {
		for _, k := range m.Keys() {
			b, _ := m.Get(k)
			out[k], _ = strconv.Atoi(string(b))
		}
	}
	return out
}

// Comments is how many comments a comments view holds.
func Comments(v *client.Convergent) int {
	if l, ok := v.State().(*crdt.Log); ok {
		return l.Len()
	}
	return 0
}
