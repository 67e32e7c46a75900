package causal

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rime-dev/rime/crdt/vv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt with the actual outputs")

// Scripts in testdata/*.txt drive nodes step by step, as etcd-io/raft's
// data-driven tests do. A case is one command line, a line "----", and
// the expected output up to a blank line; lines starting with # between
// cases are comments. Commands:
//
//	nodes a b c [max-pending=N] [max-bytes=N]   make the nodes
//	broadcast a m1                              a broadcasts payload m1
//	deliver b <- a:1 c:2                        b receives these messages, in order
//	catchup b a=2 c=1                           b learns their effects elsewhere
//	restart b                                   b restarts from its delivered vector
//	forget b                                    b restarts with no state at all
//	status b                                    b's delivered vector and buffer
//	check                                       CheckCausal over all deliveries so far
//
// go test ./causal -run TestScripts -update rewrites the expected outputs.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type scriptCase struct {
	pre      []string // comments and blank lines before the command
	cmd      string
	line     int
	expected string
}

func parseScript(t *testing.T, file string) []scriptCase {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []scriptCase
	var cur scriptCase
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			cur.pre = append(cur.pre, line)
			continue
		}
		cur.cmd, cur.line = line, n
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: command without ---- after it", file, n)
		}
		n++
		var out []string
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				break
			}
			out = append(out, sc.Text())
		}
		cur.expected = strings.Join(out, "\n")
		cases = append(cases, cur)
		cur = scriptCase{pre: []string{""}}
	}
	return cases
}

type world struct {
	cfg        Config
	nodes      map[string]*Node
	sent       map[MsgID]Msg
	deliveries map[string][]MsgID
}

func runScript(t *testing.T, file string) {
	cases := parseScript(t, file)
	w := &world{nodes: map[string]*Node{}, sent: map[MsgID]Msg{}, deliveries: map[string][]MsgID{}}
	var rewritten strings.Builder
	for _, c := range cases {
		got, err := w.do(c.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", file, c.line, c.cmd, err)
		}
		if got == "" {
			got = "ok"
		}
		for _, p := range c.pre {
			rewritten.WriteString(p + "\n")
		}
		fmt.Fprintf(&rewritten, "%s\n----\n%s\n", c.cmd, got)
		if !*update && got != c.expected {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, c.line, c.cmd, got, c.expected)
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *world) node(name string) (*Node, error) {
	n, ok := w.nodes[name]
	if !ok {
		return nil, fmt.Errorf("no node %q", name)
	}
	return n, nil
}

// report prints a Ready, one line per delivery.
func (w *world) report(out *strings.Builder, node string, rd Ready) {
	for _, m := range rd.Deliver {
		w.deliveries[node] = append(w.deliveries[node], m.ID)
		fmt.Fprintf(out, "%s: deliver %v %q\n", node, m.ID, m.Payload)
	}
}

func (w *world) do(cmd string) (string, error) {
	f := strings.Fields(cmd)
	var out strings.Builder
	switch f[0] {
	case "nodes":
		w.cfg = DefaultConfig("")
		var names []string
		for _, a := range f[1:] {
			if k, v, ok := strings.Cut(a, "="); ok {
				x, err := strconv.Atoi(v)
				if err != nil {
					return "", err
				}
				switch k {
				case "max-pending":
					w.cfg.MaxPending = x
				case "max-bytes":
					w.cfg.MaxPendingBytes = x
				default:
					return "", fmt.Errorf("unknown option %q", k)
				}
				continue
			}
			names = append(names, a)
		}
		for _, name := range names {
			cfg := w.cfg
			cfg.ID = name
			n, err := New(cfg)
			if err != nil {
				return "", err
			}
			w.nodes[name] = n
		}
	case "broadcast":
		n, err := w.node(f[1])
		if err != nil {
			return "", err
		}
		rd := n.Broadcast([]byte(strings.Join(f[2:], " ")))
		for _, m := range rd.Send {
			w.sent[m.ID] = m
			fmt.Fprintf(&out, "%s: send %v deps=%v\n", f[1], m.ID, m.Deps)
		}
		w.report(&out, f[1], rd)
	case "deliver":
		n, err := w.node(f[1])
		if err != nil {
			return "", err
		}
		if len(f) < 4 || f[2] != "<-" {
			return "", errors.New("usage: deliver NODE <- ID...")
		}
		for _, s := range f[3:] {
			id, err := vv.ParseDot(s)
			if err != nil {
				return "", err
			}
			m, ok := w.sent[id]
			if !ok {
				return "", fmt.Errorf("no message %v was sent", id)
			}
			// Through the wire format, as a driver would.
			b, err := m.MarshalBinary()
			if err != nil {
				return "", err
			}
			if m, err = DecodeMsg(b); err != nil {
				return "", err
			}
			before := n.Stats()
			rd, err := n.Step(m)
			switch {
			case err != nil:
				fmt.Fprintf(&out, "%s: refuse %v: %v\n", f[1], id, err)
			case n.Stats().Duplicates > before.Duplicates:
				fmt.Fprintf(&out, "%s: duplicate %v\n", f[1], id)
			case len(rd.Deliver) == 0:
				fmt.Fprintf(&out, "%s: hold %v (waits for %v)\n", f[1], id, n.missing(m))
			}
			w.report(&out, f[1], rd)
		}
	case "catchup":
		n, err := w.node(f[1])
		if err != nil {
			return "", err
		}
		v := vv.VV{}
		for _, a := range f[2:] {
			r, k, _ := strings.Cut(a, "=")
			x, err := strconv.ParseUint(k, 10, 64)
			if err != nil {
				return "", err
			}
			v[r] = x
			// What the node skips, it has as if delivered, for check.
			for s := n.delivered[r] + 1; s <= x && r != f[1]; s++ {
				w.deliveries[f[1]] = append(w.deliveries[f[1]], MsgID{Replica: r, Seq: s})
			}
		}
		w.report(&out, f[1], n.Catchup(v))
	case "restart", "forget":
		n, err := w.node(f[1])
		if err != nil {
			return "", err
		}
		cfg := w.cfg
		cfg.ID = f[1]
		if f[0] == "restart" {
			cfg.Start = n.Delivered()
		}
		if w.nodes[f[1]], err = New(cfg); err != nil {
			return "", err
		}
	case "status":
		n, err := w.node(f[1])
		if err != nil {
			return "", err
		}
		st := n.Stats()
		fmt.Fprintf(&out, "%s: delivered %v, %d waiting (%d bytes), %d duplicates\n", f[1], n.Delivered(), st.Pending, st.PendingBytes, st.Duplicates)
		for _, p := range n.Pending() {
			fmt.Fprintf(&out, "  %v waits for %v\n", p.ID, p.Missing)
		}
	case "check":
		deps := map[MsgID]vv.VV{}
		for id, m := range w.sent {
			deps[id] = m.Deps
		}
		for _, v := range CheckCausal(w.deliveries, deps) {
			fmt.Fprintln(&out, v)
		}
	default:
		return "", fmt.Errorf("unknown command %q", f[0])
	}
	return strings.TrimRight(out.String(), "\n"), nil
}
