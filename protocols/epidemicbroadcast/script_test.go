package epidemicbroadcast

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt with the output the core gives now")

// TestScripts runs the data-driven scripts in testdata: each is a
// sequence of commands to one Core, each followed by "----" and the
// output it must give (what the Ready says to send and deliver), ending
// at a blank line. Lines starting with # are comments. With -update the
// files are rewritten with the current output; review the diff.
//
// Commands:
//
//	init self=a epoch=1 [fanout= seed= window= retained= retainbytes= retainticks= digestticks= maxorigins= maxepochs= maxpayload= batch=]
//	peers ADDR...
//	broadcast PAYLOAD
//	push|repair from=ADDR ORIGIN/EPOCH/SEQ[@AGE]=PAYLOAD...
//	digest|digestreply from=ADDR ORIGIN/EPOCH:WATERMARK[+SEQ,SEQ...]...
//	tick [N]
//	stats | state
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

func runScript(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	var out strings.Builder // the rewritten file
	var c *Core
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmdLine := i + 1
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", file, cmdLine, line)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		i-- // the blank line (or EOF) is handled by the loop
		got, err := runCommand(&c, line)
		if err != nil {
			got = "error: " + err.Error()
		}
		out.WriteString(line + "\n----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
		if !*update && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, cmdLine, line, got, strings.Join(want, "\n"))
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runCommand(cp **Core, line string) (string, error) {
	f := strings.Fields(line)
	cmd, args := f[0], f[1:]
	if cmd == "init" {
		kv, _ := keyVals(args)
		cfg := DefaultConfig()
		cfg.DigestTicks = 1
		for k, p := range map[string]*int{"fanout": &cfg.Fanout, "window": &cfg.Window, "retained": &cfg.MaxRetained,
			"retainbytes": &cfg.MaxRetainedBytes, "retainticks": &cfg.RetainTicks, "digestticks": &cfg.DigestTicks,
			"maxorigins": &cfg.MaxOrigins, "maxepochs": &cfg.MaxEpochs, "maxpayload": &cfg.MaxPayload, "batch": &cfg.MaxBatchBytes} {
			if v, ok := kv[k]; ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					return "", fmt.Errorf("%s: %w", k, err)
				}
				*p = n
			}
		}
		epoch, _ := strconv.ParseUint(kv["epoch"], 10, 64)
		seed, _ := strconv.ParseUint(kv["seed"], 10, 64)
		c, err := NewCore(kv["self"], epoch, cfg, rand.New(rand.NewPCG(seed, seed)))
		if err != nil {
			return "", err
		}
		*cp = c
		return "", nil
	}
	c := *cp
	if c == nil {
		return "", fmt.Errorf("no init before %q", cmd)
	}
	switch cmd {
	case "peers":
		c.SetPeers(args)
		return "", nil
	case "broadcast":
		rd, err := c.Broadcast([]byte(strings.Join(args, " ")))
		return formatReady(rd), err
	case "push", "repair", "digest", "digestreply":
		kv, rest := keyVals(args)
		m := Message{Kind: map[string]Kind{"push": KindPush, "repair": KindRepair, "digest": KindDigest, "digestreply": KindDigestReply}[cmd]}
		for _, a := range rest {
			if m.Kind == KindPush || m.Kind == KindRepair {
				d, err := parseData(a)
				if err != nil {
					return "", err
				}
				m.Data = append(m.Data, d)
			} else {
				s, err := parseStream(a)
				if err != nil {
					return "", err
				}
				m.Digest = append(m.Digest, s)
			}
		}
		return formatReady(c.Step(kv["from"], m)), nil
	case "tick":
		n := 1
		if len(args) > 0 {
			n, _ = strconv.Atoi(args[0])
		}
		var all []string
		for range n {
			if s := formatReady(c.Tick()); s != "" {
				all = append(all, s)
			}
		}
		return strings.Join(all, "\n"), nil
	case "stats":
		s := c.Stats()
		return fmt.Sprintf("retained=%d bytes=%d origins=%d streams=%d windowbits=%d delivered=%d duplicates=%d stale=%d skipped=%d expired=%d refused=%d invalid=%d",
			s.Retained, s.RetainedBytes, s.Origins, s.Streams, s.WindowBits, s.Delivered, s.Duplicates, s.Stale, s.Skipped, s.Expired, s.Refused, s.Invalid), nil
	case "state":
		return c.String(), nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

// keyVals splits key=value arguments (keys without "/") from the rest.
func keyVals(args []string) (map[string]string, []string) {
	kv := map[string]string{}
	var rest []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && !strings.Contains(k, "/") {
			kv[k] = v
			continue
		}
		rest = append(rest, a)
	}
	return kv, rest
}

// parseData reads ORIGIN/EPOCH/SEQ[@AGE]=PAYLOAD.
func parseData(s string) (Data, error) {
	name, payload, _ := strings.Cut(s, "=")
	var age uint64
	if n, a, ok := strings.Cut(name, "@"); ok {
		v, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return Data{}, fmt.Errorf("data %q: bad age", s)
		}
		name, age = n, v
	}
	p := strings.Split(name, "/")
	if len(p) != 3 {
		return Data{}, fmt.Errorf("data %q: want origin/epoch/seq=payload", s)
	}
	ep, err1 := strconv.ParseUint(p[1], 10, 64)
	seq, err2 := strconv.ParseUint(p[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Data{}, fmt.Errorf("data %q: bad number", s)
	}
	return Data{Origin: p[0], Epoch: ep, Seq: seq, Age: age, Payload: []byte(payload)}, nil
}

// parseStream reads ORIGIN/EPOCH:WATERMARK[+SEQ,SEQ...].
func parseStream(s string) (StreamDigest, error) {
	name, rest, ok := strings.Cut(s, ":")
	origin, eps, ok2 := strings.Cut(name, "/")
	if !ok || !ok2 {
		return StreamDigest{}, fmt.Errorf("stream %q: want origin/epoch:watermark[+seqs]", s)
	}
	wm, above, _ := strings.Cut(rest, "+")
	sd := StreamDigest{Origin: origin}
	var err error
	if sd.Epoch, err = strconv.ParseUint(eps, 10, 64); err != nil {
		return sd, err
	}
	if sd.Watermark, err = strconv.ParseUint(wm, 10, 64); err != nil {
		return sd, err
	}
	if above != "" {
		for _, a := range strings.Split(above, ",") {
			q, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return sd, err
			}
			sd.Above = append(sd.Above, q)
		}
	}
	return sd, nil
}

func formatReady(rd Ready) string {
	var b []string
	for _, e := range rd.Send {
		var items []string
		for _, d := range e.Msg.Data {
			age := ""
			if d.Age > 0 {
				age = fmt.Sprintf("@%d", d.Age)
			}
			items = append(items, fmt.Sprintf("%s/%d/%d%s=%s", d.Origin, d.Epoch, d.Seq, age, d.Payload))
		}
		for _, s := range e.Msg.Digest {
			it := fmt.Sprintf("%s/%d:%d", s.Origin, s.Epoch, s.Watermark)
			if len(s.Above) > 0 {
				var as []string
				for _, a := range s.Above {
					as = append(as, strconv.FormatUint(a, 10))
				}
				it += "+" + strings.Join(as, ",")
			}
			items = append(items, it)
		}
		b = append(b, strings.TrimSpace(fmt.Sprintf("send %s %v %s", e.To, e.Msg.Kind, strings.Join(items, " "))))
	}
	for _, d := range rd.Deliver {
		b = append(b, fmt.Sprintf("deliver %s %s", d.From, d.Payload))
	}
	return strings.Join(b, "\n")
}
