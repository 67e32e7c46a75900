// Package netns runs each node of a plan as a separate `rime node`
// process in its own Linux network namespace, joined by veth pairs to one
// bridge, for verify's multi-host runtime: the nodes talk over real
// kernel networking (TCP with mutual TLS), and a partition is made by
// cutting a node's link, as a pulled cable would.
//
// It needs root and the ip tool (iproute2); Available says what is
// missing. Everything it creates carries the cluster's prefix and is
// removed by Close, which is safe to call more than once; Start removes
// leftovers of an earlier run with the same prefix (say, after a kill -9).
//
// This kernel has no netem qdisc, so delay, loss and duplication come
// from rime's own network layer: every node runs with --faults, and
// SetFaults sets them on a node's outgoing traffic through its API.
package netns

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/network/faultnet"
	"github.com/rime-dev/rime/protocols"
)

// Available reports why namespaces cannot be used here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip tool (iproute2) is not installed")
	}
	name := fmt.Sprintf("rime-probe-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("cannot create a network namespace: %s", bytes.TrimSpace(out))
	}
	exec.Command("ip", "netns", "del", name).Run()
	return nil
}

// Config describes the cluster.
type Config struct {
	// Command runs rime: the binary and any leading arguments (a test
	// binary that stands in for rime passes itself).
	Command []string
	// Env is added to the processes' environment.
	Env []string
	// Prefix names every namespace, link and bridge (at most 6
	// characters: Linux link names are short).
	Prefix string
	// Subnet is the bridge's /24 as its first three octets ("10.77.3").
	Subnet string
	// Plan is a plan or app file for `rime node --plan`; Classes the data
	// classes to host; NodeClasses one node class per node.
	Plan        string
	Classes     []string
	NodeClasses []string
	// Dir holds the nodes' data directories.
	Dir string
}

// Ready is what a node printed when it came up.
type Ready struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	API    string `json:"api"`
	Secret string `json:"secret"`
}

// Cluster is the running nodes.
type Cluster struct {
	cfg    Config
	bridge string
	nodes  []*proc

	closeOnce sync.Once
}

type proc struct {
	ns, veth, ip string
	cmd          *exec.Cmd
	ready        Ready
	stderr       bytes.Buffer
	done         chan error
	lines        chan string // stdout after the ready line
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s", strings.Join(args, " "), bytes.TrimSpace(out))
	}
	return nil
}

// Start creates the bridge, one namespace and veth pair per node, and
// starts the nodes: the first bootstraps, the others join it. On error
// everything created so far is removed.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if len(cfg.Prefix) == 0 || len(cfg.Prefix) > 6 || len(cfg.NodeClasses) == 0 || len(cfg.Command) == 0 {
		return nil, errors.New("netns: Config needs Command, NodeClasses and a Prefix of 1-6 characters")
	}
	c = &Cluster{cfg: cfg, bridge: cfg.Prefix + "br"}
	c.cleanup() // leftovers of an earlier run
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := run("ip", "link", "add", c.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	if err := run("ip", "addr", "add", cfg.Subnet+".254/24", "dev", c.bridge); err != nil {
		return nil, err
	}
	if err := run("ip", "link", "set", c.bridge, "up"); err != nil {
		return nil, err
	}
	for i := range cfg.NodeClasses {
		p := &proc{ns: fmt.Sprintf("%s-n%d", cfg.Prefix, i), veth: fmt.Sprintf("%sv%d", cfg.Prefix, i), ip: fmt.Sprintf("%s.%d", cfg.Subnet, i+1), done: make(chan error, 1), lines: make(chan string, 256)}
		c.nodes = append(c.nodes, p)
		for _, args := range [][]string{
			{"ip", "netns", "add", p.ns},
			{"ip", "link", "add", p.veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns},
			{"ip", "link", "set", p.veth, "master", c.bridge},
			{"ip", "link", "set", p.veth, "up"},
			{"ip", "-n", p.ns, "addr", "add", p.ip + "/24", "dev", "eth0"},
			{"ip", "-n", p.ns, "link", "set", "eth0", "up"},
			{"ip", "-n", p.ns, "link", "set", "lo", "up"},
		} {
			if err := run(args...); err != nil {
				return nil, err
			}
		}
	}
	if err := c.startNode(ctx, 0, nil); err != nil {
		return nil, err
	}
	for i := 1; i < len(c.nodes); i++ {
		if err := c.startNode(ctx, i, []string{"--join", c.nodes[0].ready.Addr, "--secret", c.nodes[0].ready.Secret}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startNode(ctx context.Context, i int, extra []string) error {
	p := c.nodes[i]
	args := append([]string{"netns", "exec", p.ns}, c.cfg.Command...)
	args = append(args, "node", "--format", "json", "--data", filepath.Join(c.cfg.Dir, fmt.Sprint("n", i)),
		"--plan", c.cfg.Plan, "--node-class", c.cfg.NodeClasses[i],
		"--listen", p.ip+":7946", "--api", p.ip+":8080", "--faults")
	for _, cl := range c.cfg.Classes {
		args = append(args, "--class", cl)
	}
	args = append(args, extra...)
	// Not CommandContext: the process must outlive a cancelled start
	// only until Close, which stops it cleanly.
	p.cmd = exec.Command("ip", args...)
	p.cmd.Env = append(os.Environ(), c.cfg.Env...)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("netns: start node %d: %w", i, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for n := 0; sc.Scan(); n++ {
			line := first
			if n > 0 {
				line = p.lines
			}
			select {
			case line <- sc.Text():
			default: // nobody reads status lines now: never block the node
			}
		}
	}()
	select {
	case line := <-first:
		if err := json.Unmarshal([]byte(line), &p.ready); err != nil || p.ready.Addr == "" {
			return fmt.Errorf("netns: node %d: first line %q is not its ready line", i, line)
		}
		return nil
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("netns: node %d exited before it was ready: %v\n%s", i, err, p.stderr.String())
	case <-ctx.Done():
		return fmt.Errorf("netns: node %d not ready: %w\n%s", i, ctx.Err(), p.stderr.String())
	}
}

// WaitVoters waits until node i reports class's shard with voters
// voters (its status lines), so faults start on a formed cluster.
func (c *Cluster) WaitVoters(ctx context.Context, i int, class string, voters int) error {
	p := c.nodes[i]
	for {
		select {
		case line := <-p.lines:
			var st struct {
				Event, Class string
				Voters       int
			}
			if json.Unmarshal([]byte(line), &st) == nil && st.Event == "status" && st.Class == class && st.Voters >= voters {
				return nil
			}
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("netns: node %d exited: %v\n%s", i, err, p.stderr.String())
		case <-ctx.Done():
			return fmt.Errorf("netns: node %d never reported %d voters for %s: %w", i, voters, class, ctx.Err())
		}
	}
}

// N is the number of nodes.
func (c *Cluster) N() int { return len(c.nodes) }

// Ready is what node i printed when it came up.
func (c *Cluster) Ready(i int) Ready { return c.nodes[i].ready }

// Channel is class's channel on node i, reached over its HTTP API (from
// the root namespace, through the bridge).
func (c *Cluster) Channel(i int, class string) protocols.Channel {
	cl, err := client.NewHTTP(c.nodes[i].ready.API, nil)
	if err != nil {
		return nil
	}
	return &apiChannel{c: cl, class: class}
}

// SetFaults sets the loss, duplication and delay of node i's outgoing
// traffic (faultnet, in the node's process).
func (c *Cluster) SetFaults(ctx context.Context, i int, f faultnet.Faults) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.nodes[i].ready.API+"/v1/faults", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("netns: node %d: set faults: %w", i, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("netns: node %d: set faults: %s: %s", i, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Isolate cuts node i's link: it can reach no one and no one it.
func (c *Cluster) Isolate(i int) error {
	return run("ip", "link", "set", c.nodes[i].veth, "down")
}

// Heal restores every link.
func (c *Cluster) Heal() error {
	var errs []error
	for _, p := range c.nodes {
		errs = append(errs, run("ip", "link", "set", p.veth, "up"))
	}
	return errors.Join(errs...)
}

// Close stops the nodes (SIGTERM, then SIGKILL after 5 s) and removes
// the namespaces, links and bridge.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		for _, p := range c.nodes {
			if p.cmd == nil || p.cmd.Process == nil {
				continue
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range c.nodes {
			if p.cmd == nil || p.cmd.Process == nil {
				continue
			}
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		c.cleanup()
	})
}

// cleanup removes everything with the cluster's prefix; errors mean
// there was nothing to remove.
func (c *Cluster) cleanup() {
	for i := range max(len(c.cfg.NodeClasses), len(c.nodes)) {
		exec.Command("ip", "link", "del", fmt.Sprintf("%sv%d", c.cfg.Prefix, i)).Run()
		exec.Command("ip", "netns", "del", fmt.Sprintf("%s-n%d", c.cfg.Prefix, i)).Run()
	}
	exec.Command("ip", "link", "del", c.bridge).Run()
}

// Stderr is what node i wrote to stderr, for diagnosing a failure.
func (c *Cluster) Stderr(i int) string { return c.nodes[i].stderr.String() }

// apiChannel is a protocols.Channel whose sessions are the node's HTTP
// API, so verify's workload drives remote nodes as it drives local ones.
type apiChannel struct {
	c     *client.Client
	class string
}

func (a *apiChannel) Start(context.Context) error { return nil }
func (a *apiChannel) Close() error                { return nil }
func (a *apiChannel) Connect(ctx context.Context) (protocols.Session, error) {
	return a.c.Open(ctx, a.class)
}

var _ protocols.Channel = (*apiChannel)(nil)
