package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/memlog"
)

// waitFor bounds every wait for an event; nothing here waits by sleeping.
const waitFor = 10 * time.Second

// mode is one way for an application to reach a node.
type mode struct {
	name string
	new  func(t *testing.T, n *testNode) *client.Client
}

var modes = []mode{
	{"local", func(t *testing.T, n *testNode) *client.Client { return client.NewLocal(n.lookup) }},
	{"http", func(t *testing.T, n *testNode) *client.Client {
		srv := httptest.NewServer(client.NewHandler(n.lookup, slog.New(slog.DiscardHandler)))
		t.Cleanup(func() {
			// Event streams last as long as their sessions: cut them, or
			// Close waits for them.
			srv.CloseClientConnections()
			srv.Close()
		})
		c, err := client.NewHTTP(srv.URL, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
}

// forEachMode runs test once per mode.
func forEachMode(t *testing.T, test func(t *testing.T, m mode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { test(t, m) })
	}
}

func open(t *testing.T, c *client.Client, class string) *client.Channel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ch, err := c.Open(ctx, class)
	if err != nil {
		t.Fatalf("Open(%s): %v", class, err)
	}
	t.Cleanup(ch.Close)
	return ch
}

// next returns ch's next event, failing after waitFor.
func next(t *testing.T, ch *client.Channel) protocols.Event {
	t.Helper()
	select {
	case ev, ok := <-ch.Events():
		if !ok {
			t.Fatalf("class %s: events closed: %v", ch.Class(), ch.Err())
		}
		return ev
	case <-time.After(waitFor):
		t.Fatalf("class %s: no event within %s", ch.Class(), waitFor)
	}
	return protocols.Event{}
}

// expectInit reads the Initialize event and checks it.
func expectInit(t *testing.T, ch *client.Channel, seq uint64, data string) {
	t.Helper()
	ev := next(t, ch)
	if ev.Kind != protocols.Initialize || ev.Seq != seq || string(ev.Data) != data {
		t.Fatalf("first event %v %d %q, want initialize %d %q", ev.Kind, ev.Seq, ev.Data, seq, data)
	}
}

// updates reads n updates, checking that they are contiguous from
// first, and returns their data. Checkpoint requests are skipped.
func updates(t *testing.T, ch *client.Channel, first uint64, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		ev := next(t, ch)
		switch ev.Kind {
		case protocols.RequestCheckpoint:
			continue
		case protocols.Update:
		default:
			t.Fatalf("event %v %d, want update %d", ev.Kind, ev.Seq, first+uint64(len(out)))
		}
		if want := first + uint64(len(out)); ev.Seq != want {
			t.Fatalf("update %d, want %d: not contiguous", ev.Seq, want)
		}
		out = append(out, string(ev.Data))
	}
	return out
}

func submit(t *testing.T, ch *client.Channel, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := ch.Submit(ctx, []byte(data)); err != nil {
		t.Fatalf("Submit(%q): %v", data, err)
	}
}

// waitClosed waits until ch's events are closed, draining them.
func waitClosed(t *testing.T, ch *client.Channel) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case _, ok := <-ch.Events():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("class %s: events still open after %s", ch.Class(), waitFor)
		}
	}
}

func TestSessionsSeeTheSameContiguousOrder(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(1000), "albums")
		c := m.new(t, n)
		a, b := open(t, c, "albums"), open(t, c, "albums")
		expectInit(t, a, 0, "")
		expectInit(t, b, 0, "")

		const each = 20
		var wg sync.WaitGroup
		for _, s := range []struct {
			ch   *client.Channel
			name string
		}{{a, "a"}, {b, "b"}} {
			wg.Go(func() {
				for i := range each {
					if err := s.ch.Submit(context.Background(), fmt.Appendf(nil, "%s%02d", s.name, i)); err != nil {
						t.Errorf("submit: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		gotA := updates(t, a, 1, 2*each)
		gotB := updates(t, b, 1, 2*each)
		if !slices.Equal(gotA, gotB) {
			t.Fatalf("sessions disagree on the order:\n a: %v\n b: %v", gotA, gotB)
		}
		// Each session's own updates enter the order as it submitted them.
		for _, name := range []string{"a", "b"} {
			var mine []string
			for _, u := range gotA {
				if strings.HasPrefix(u, name) {
					mine = append(mine, u)
				}
			}
			if len(mine) != each || !slices.IsSorted(mine) {
				t.Errorf("session %s's updates arrived as %v", name, mine)
			}
		}
	})
}

func TestSubmitArrivesAsUpdate(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(1000), "albums")
		ch := open(t, m.new(t, n), "albums")
		expectInit(t, ch, 0, "")
		submit(t, ch, "hello")
		if got := updates(t, ch, 1, 1); got[0] != "hello" {
			t.Fatalf("update %q, want hello", got[0])
		}
		// Bytes that are not text survive the trip (base64 over HTTP).
		raw := string([]byte{0, 0xff, '\n', '\r', 0x80})
		submit(t, ch, raw)
		submit(t, ch, "")
		if got := updates(t, ch, 2, 2); got[0] != raw || got[1] != "" {
			t.Fatalf("updates %q, want %q and empty", got, raw)
		}
	})
}

func TestSyncIsReachedByTheStream(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(1000), "albums")
		c := m.new(t, n)
		reader, writer := open(t, c, "albums"), open(t, c, "albums")
		expectInit(t, reader, 0, "")
		expectInit(t, writer, 0, "")
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if seq, err := reader.Sync(ctx); err != nil || seq != 0 {
			t.Fatalf("Sync on an empty channel: %d, %v; want 0", seq, err)
		}
		for i := range 5 {
			submit(t, writer, fmt.Sprint(i))
		}
		// The updates are committed once the writer sees them; a Sync
		// that begins later must cover them.
		updates(t, writer, 1, 5)
		seq, err := reader.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seq < 5 {
			t.Fatalf("Sync = %d after 5 committed updates", seq)
		}
		// Sync returned, so the reader's events up to seq are already
		// queued: take them without waiting.
		var last uint64
		for more := true; more; {
			select {
			case ev := <-reader.Events():
				if ev.Kind == protocols.Update {
					last = ev.Seq
				}
			default:
				more = false
			}
		}
		if last < seq {
			t.Fatalf("Sync = %d but the stream had reached only %d", seq, last)
		}
	})
}

func TestCheckpointInitializesLaterSessions(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(3), "albums")
		c := m.new(t, n)
		a := open(t, c, "albums")
		expectInit(t, a, 0, "")
		for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
			submit(t, a, u)
		}
		if got := updates(t, a, 1, 3); !slices.Equal(got, []string{"u1", "u2", "u3"}) {
			t.Fatalf("updates %v", got)
		}
		ev := next(t, a)
		if ev.Kind != protocols.RequestCheckpoint || ev.Seq != 3 {
			t.Fatalf("event %v %d, want request_checkpoint 3", ev.Kind, ev.Seq)
		}
		if err := a.Checkpoint(3, []byte("u1u2u3")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := n.logs["albums"].WaitSnapshot(ctx, 3); err != nil {
			t.Fatalf("checkpoint not recorded: %v", err)
		}
		if got := updates(t, a, 4, 2); !slices.Equal(got, []string{"u4", "u5"}) {
			t.Fatalf("updates %v", got)
		}

		late := open(t, c, "albums")
		expectInit(t, late, 3, "u1u2u3")
		if got := updates(t, late, 4, 2); !slices.Equal(got, []string{"u4", "u5"}) {
			t.Fatalf("late session's tail %v, want [u4 u5]", got)
		}
		// A checkpoint ahead of what the session was sent is refused.
		if err := a.Checkpoint(99, []byte("x")); err == nil {
			t.Fatal("Checkpoint(99) after 5 updates succeeded")
		}
	})
}

func TestOpenUnknownClass(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(1000), "albums", "photos")
		_, err := m.new(t, n).Open(context.Background(), "nope")
		if !errors.Is(err, client.ErrUnknownClass) {
			t.Fatalf("Open(nope) = %v, want ErrUnknownClass", err)
		}
		for _, s := range []string{`"nope"`, "albums, photos"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %s", err, s)
			}
		}
	})
}

func TestSubmitAfterClose(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(1000), "albums")
		ch := open(t, m.new(t, n), "albums")
		expectInit(t, ch, 0, "")
		ch.Close()
		ch.Close() // twice is harmless
		err := ch.Submit(context.Background(), []byte("late"))
		if !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("Submit after Close = %v, want ErrDisconnected", err)
		}
		waitClosed(t, ch)
		if !errors.Is(ch.Err(), protocols.ErrDisconnected) {
			t.Fatalf("Err = %v", ch.Err())
		}
		if _, err := ch.Sync(context.Background()); !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("Sync after Close = %v", err)
		}
	})
}

func TestSessionsEndWhenTheChannelCloses(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(1000), "albums")
		ch := open(t, m.new(t, n), "albums")
		expectInit(t, ch, 0, "")
		n.chans["albums"].Close()
		waitClosed(t, ch)
		if !errors.Is(ch.Err(), protocols.ErrClosed) {
			t.Fatalf("Err = %v, want ErrClosed", ch.Err())
		}
		if err := ch.Submit(context.Background(), []byte("x")); !errors.Is(err, protocols.ErrClosed) {
			t.Fatalf("Submit = %v, want ErrClosed", err)
		}
	})
}

// concat is a Replica whose state is its updates concatenated. Every
// change is reported on changes, so tests wait for a state, not a time.
type concat struct {
	mu       sync.Mutex
	state    string
	restored []string
	changes  chan struct{}
}

func newConcat() *concat { return &concat{changes: make(chan struct{}, 1)} }

func (c *concat) Apply(u []byte) { c.set(func() { c.state += string(u) }) }
func (c *concat) Checkpoint() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []byte(c.state)
}
func (c *concat) Restore(cp []byte) {
	c.set(func() { c.state = string(cp); c.restored = append(c.restored, string(cp)) })
}

func (c *concat) set(f func()) {
	c.mu.Lock()
	f()
	c.mu.Unlock()
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// waitState waits until the replica's state is want.
func (c *concat) waitState(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		c.mu.Lock()
		got := c.state
		c.mu.Unlock()
		if got == want {
			return
		}
		select {
		case <-c.changes:
		case <-deadline:
			t.Fatalf("replica state %q, want %q", got, want)
		}
	}
}

func appendLog(t *testing.T, log *memlog.Log, data string) {
	t.Helper()
	if _, err := log.Append(context.Background(), []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// runAsync runs Run in a goroutine; the result comes on the channel.
func runAsync(ch *client.Channel, r client.Replica) <-chan error {
	done := make(chan error, 1)
	go func() { done <- client.Run(context.Background(), ch, r) }()
	return done
}

func runResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	return nil
}

func TestRunKeepsAReplica(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		n := newTestNode(t, testConfig(2), "albums")
		c := m.new(t, n)
		ch := open(t, c, "albums")
		r := newConcat()
		done := runAsync(ch, r)

		// The updates come from elsewhere in the group, straight into the
		// log: a second session here could fall behind the compaction
		// below and be ended by it.
		log := n.logs["albums"]
		appendLog(t, log, "a")
		appendLog(t, log, "b")
		r.waitState(t, "ab")
		// Run's session asked first, so it is the one asked for a
		// checkpoint after update 2, and Run answers with "ab".
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := log.WaitSnapshot(ctx, 2); err != nil {
			t.Fatalf("Run's checkpoint not recorded: %v", err)
		}
		if _, state := log.Snapshot(); string(state) != "ab" {
			t.Fatalf("checkpoint %q, want ab", state)
		}
		appendLog(t, log, "c")
		r.waitState(t, "abc")

		// A new replica starts from the checkpoint and gets the tail.
		late := newConcat()
		lateCh := open(t, c, "albums")
		lateDone := runAsync(lateCh, late)
		late.waitState(t, "abc")
		if !slices.Equal(late.restored, []string{"ab"}) {
			t.Fatalf("late replica restored from %q, want [ab]", late.restored)
		}

		ch.Close()
		if err := runResult(t, done); err != nil {
			t.Fatalf("Run after Close = %v, want nil", err)
		}
		n.chans["albums"].Close()
		if err := runResult(t, lateDone); !errors.Is(err, protocols.ErrClosed) {
			t.Fatalf("Run after the channel closed = %v, want ErrClosed", err)
		}
	})
}

func TestRunStopsWithItsContext(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums")
	ch := open(t, client.NewLocal(n.lookup), "albums")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := client.Run(ctx, ch, newConcat()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// scripted is a channel whose one session delivers a fixed script of
// events, for what a real channel never does.
type scripted struct{ events []protocols.Event }

func (s scripted) Start(context.Context) error { return nil }
func (s scripted) Close() error                { return nil }
func (s scripted) Connect(context.Context) (protocols.Session, error) {
	ch := make(chan protocols.Event, len(s.events))
	for _, ev := range s.events {
		ch <- ev
	}
	close(ch)
	return &scriptedSession{events: ch}, nil
}

type scriptedSession struct{ events chan protocols.Event }

func (s *scriptedSession) Events() <-chan protocols.Event       { return s.events }
func (s *scriptedSession) Submit(context.Context, []byte) error { return nil }
func (s *scriptedSession) Checkpoint(uint64, []byte) error      { return nil }
func (s *scriptedSession) Sync(context.Context) (uint64, error) { return 0, nil }
func (s *scriptedSession) Disconnect()                          {}
func (s *scriptedSession) Err() error                           { return errors.New("script over") }

func TestRunRefusesBrokenStreams(t *testing.T) {
	ini := protocols.Event{Kind: protocols.Initialize, Seq: 4}
	up := func(seq uint64) protocols.Event {
		return protocols.Event{Kind: protocols.Update, Seq: seq, Data: []byte("x")}
	}
	for _, tc := range []struct {
		name   string
		events []protocols.Event
		want   string
	}{
		{"gap", []protocols.Event{ini, up(5), up(7)}, "update 7 where 6 was due"},
		{"repeat", []protocols.Event{ini, up(5), up(5)}, "update 5 where 6 was due"},
		{"no initialize", []protocols.Event{up(1)}, "before initialize"},
		{"two initializes", []protocols.Event{ini, ini}, "second initialize"},
		{"ended", []protocols.Event{ini, up(5)}, "script over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client.NewLocal(func(string) (protocols.Channel, error) { return scripted{tc.events}, nil })
			ch, err := c.Open(context.Background(), "albums")
			if err != nil {
				t.Fatal(err)
			}
			err = client.Run(context.Background(), ch, newConcat())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "albums") {
				t.Fatalf("Run = %v, want an error naming the class and saying %q", err, tc.want)
			}
		})
	}
}
