package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rime-dev/rime/policy"
)

// DefaultDecisionLog is where `rime audit` looks for decisions when --log
// is not given.
const DefaultDecisionLog = "decisions.log"

type auditOptions struct {
	log        string
	action     string
	allow      bool
	deny       bool
	node       string
	format     string
	input      string
	policyDir  string
	replay     string
	logChanged bool
}

func newAudit() *cobra.Command {
	var o auditOptions
	cmd := &cobra.Command{
		Use:   "audit [--log FILE] [--action A] [--allow|--deny] [--node ID]",
		Short: "list trust decisions, evaluate one, or replay a log against a changed policy",
		Long: `Every trust decision of a group (join, invite, place, relay, offload, read)
is made by the group's Rego policy and appended to a decision log, one JSON
event per line: version, id, time, input, result (allow and reasons) and
the revision of the policy that decided. audit reads that log.

It does one of three things:

  rime audit [--log FILE] [filters]
      lists the logged decisions, oldest first: who was allowed or denied
      what, and why. Filters combine: --action, --node, --allow or --deny.

  rime audit --input request.json [--policy DIR] [--log FILE]
      evaluates one decision. request.json holds
        {"action": "join"|"invite"|"place"|"relay"|"offload"|"read",
         "group": "...",
         "node": {"id": "...", "class": "...",
                  "trust": "member"|"honest-but-curious"|"byzantine",
                  "member": bool, "invited": bool},
         "data": {"class": "...", "confidential": bool, "encrypted": bool}}
      and --format json prints {"allow": bool, "reasons": [...],
      "decision_id": "..."}. The decision is appended to the log only
      when --log is given.

  rime audit --replay LOG [--policy DIR]
      evaluates every decision of LOG again with the policies in DIR, as
      of the time each was made, and shows which would flip (allowed then,
      denied now, or the reverse) and which would only give other reasons.

Without --policy the embedded default policy is used (see 'rime policy
test'). Exit status: 0 done (whatever the decisions), 1 a file could not
be read or written, 2 an invalid request, log, policy or flag.`,
		Example: `  rime audit --deny
  rime audit --log hub/decisions.log --action place --node n3f2...
  rime audit --input request.json --format json
  rime audit --replay decisions.log --policy ./policies`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.logChanged = cmd.Flags().Changed("log")
			if err := o.check(); err != nil {
				return err
			}
			switch {
			case o.input != "":
				return o.evaluate(cmd)
			case o.replay != "":
				return o.replayLog(cmd)
			}
			return o.list(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.log, "log", DefaultDecisionLog, "the decision log (JSON lines)")
	f.StringVar(&o.action, "action", "", "list only decisions of this action: "+strings.Join(actionNames(), ", "))
	f.BoolVar(&o.allow, "allow", false, "list only allowed decisions")
	f.BoolVar(&o.deny, "deny", false, "list only denied decisions")
	f.StringVar(&o.node, "node", "", "list only decisions about the node with this ID")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVar(&o.input, "input", "", "evaluate the one request in this JSON file")
	f.StringVar(&o.policyDir, "policy", "", "a directory of Rego policies (default: the embedded default policy)")
	f.StringVar(&o.replay, "replay", "", "replay the decisions of this log against --policy")
	return cmd
}

func actionNames() []string {
	var s []string
	for _, a := range policy.Actions {
		s = append(s, string(a))
	}
	return s
}

// check refuses flag combinations that would silently do something else
// than asked.
func (o *auditOptions) check() error {
	invalid := func(format string, args ...any) error {
		return &exitError{ExitInvalid, fmt.Errorf("audit: "+format, args...)}
	}
	if err := checkFormat(o.format, "text", "json"); err != nil {
		return err
	}
	if o.input != "" && o.replay != "" {
		return invalid("--input evaluates one request and --replay a whole log; give one of them")
	}
	filtering := o.action != "" || o.allow || o.deny || o.node != ""
	if filtering && (o.input != "" || o.replay != "") {
		return invalid("--action, --allow, --deny and --node filter the listed decisions; they do not apply to --input or --replay")
	}
	if o.policyDir != "" && o.input == "" && o.replay == "" {
		return invalid("--policy applies to --input and --replay; listing shows decisions as they were made")
	}
	if o.replay != "" && o.logChanged {
		return invalid("--replay names the log to replay; --log is not used with it")
	}
	if o.allow && o.deny {
		return invalid("--allow and --deny exclude each other; give neither to list both")
	}
	if o.action != "" && !slices.Contains(policy.Actions, policy.Action(o.action)) {
		return invalid("--action %q: expected one of %s", o.action, strings.Join(actionNames(), ", "))
	}
	return nil
}

func (o *auditOptions) engine(cmd *cobra.Command, log io.Writer) (*policy.Engine, error) {
	e, err := policy.New(cmd.Context(), policy.Config{Dir: o.policyDir, DecisionLog: log})
	if err != nil {
		return nil, &exitError{ExitInvalid, err}
	}
	return e, nil
}

func (o *auditOptions) policyName(e *policy.Engine) string {
	name := "the embedded default policy"
	if o.policyDir != "" {
		name = o.policyDir
	}
	return fmt.Sprintf("%s (revision %s)", name, e.Revision())
}

func (o *auditOptions) evaluate(cmd *cobra.Command) error {
	data, err := os.ReadFile(o.input)
	if err != nil {
		return &exitError{ExitFailure, fmt.Errorf("audit: %w", err)}
	}
	in, err := policy.DecodeInput(data)
	if err != nil {
		return &exitError{ExitInvalid, fmt.Errorf("%s: %w (expected a request like the one in 'rime audit --help')", o.input, err)}
	}
	var log io.Writer
	var lf *appendFile
	if o.logChanged {
		lf = &appendFile{path: o.log}
		log = lf
	}
	e, err := o.engine(cmd, log)
	if err != nil {
		return err
	}
	d, err := e.Decide(cmd.Context(), in)
	if lf != nil {
		if cerr := lf.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("audit: decision %s: %w", d.DecisionID, cerr)
		}
	}
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	out := cmd.OutOrStdout()
	if o.format == "json" {
		return writeJSON(out, d)
	}
	verdict := "allow"
	if !d.Allow {
		verdict = "deny"
	}
	fmt.Fprintf(out, "%s: %s\n", verdict, describe(in))
	for _, r := range d.Reasons {
		fmt.Fprintf(out, "  %s\n", r)
	}
	fmt.Fprintf(out, "decision %s, by %s\n", d.DecisionID, o.policyName(e))
	return nil
}

// appendFile opens its file for appending on the first write, so that a
// request or policy that fails before any decision leaves no empty log.
type appendFile struct {
	path string
	f    *os.File
}

func (a *appendFile) Write(p []byte) (int, error) {
	if a.f == nil {
		f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return 0, err
		}
		a.f = f
	}
	return a.f.Write(p)
}

func (a *appendFile) Close() error {
	if a.f == nil {
		return nil
	}
	return a.f.Close()
}

// readLog reads a decision log, naming the file in every error.
func readLog(path string) ([]policy.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &exitError{ExitFailure, fmt.Errorf("audit: no decision log at %s: give its path with --log (a hub writes one beside its data)", path)}
		}
		return nil, &exitError{ExitFailure, fmt.Errorf("audit: %w", err)}
	}
	defer f.Close()
	evs, err := policy.ReadLog(f)
	if err != nil {
		var le *policy.LogError
		if errors.As(err, &le) {
			return nil, &exitError{ExitInvalid, fmt.Errorf("%s: %w (expected one decision event per line, as rime writes them)", path, err)}
		}
		return nil, &exitError{ExitFailure, fmt.Errorf("%s: %w", path, err)}
	}
	return evs, nil
}

func (o *auditOptions) list(cmd *cobra.Command) error {
	evs, err := readLog(o.log)
	if err != nil {
		return err
	}
	shown := []policy.Event{}
	for _, ev := range evs {
		switch {
		case o.action != "" && string(ev.Input.Action) != o.action,
			o.node != "" && ev.Input.Node.ID != o.node,
			o.allow && !ev.Result.Allow,
			o.deny && ev.Result.Allow:
			continue
		}
		shown = append(shown, ev)
	}
	out := cmd.OutOrStdout()
	if o.format == "json" {
		return writeJSON(out, struct {
			Log       string         `json:"log"`
			Total     int            `json:"total"`
			Decisions []policy.Event `json:"decisions"`
		}{o.log, len(evs), shown})
	}
	denied := 0
	for _, ev := range shown {
		writeEvent(out, ev, ev.Result)
		if !ev.Result.Allow {
			denied++
		}
	}
	fmt.Fprintf(out, "%d of %d decisions in %s: %d allowed, %d denied\n", len(shown), len(evs), o.log, len(shown)-denied, denied)
	return nil
}

func writeEvent(out io.Writer, ev policy.Event, r policy.Result) {
	verdict := "ALLOW"
	if !r.Allow {
		verdict = "DENY "
	}
	fmt.Fprintf(out, "%s  %s  %s  [%s]\n", ev.Time.Format("2006-01-02T15:04:05Z07:00"), verdict, describe(ev.Input), ev.ID)
	for _, reason := range r.Reasons {
		fmt.Fprintf(out, "    %s\n", reason)
	}
}

// describe says in a few words what was asked.
func describe(in policy.Input) string {
	n := fmt.Sprintf("node %s (%s", in.Node.ID, in.Node.Trust)
	if in.Node.Class != "" {
		n = fmt.Sprintf("node %s (class %s, %s", in.Node.ID, in.Node.Class, in.Node.Trust)
	}
	switch {
	case in.Node.Member:
		n += ", member)"
	case in.Node.Invited:
		n += ", invited)"
	default:
		n += ", not a member)"
	}
	g := " in group " + in.Group
	switch in.Action {
	case policy.Join:
		return fmt.Sprintf("join: %s joins group %s", n, in.Group)
	case policy.Invite:
		return fmt.Sprintf("invite: %s invites a key to group %s", n, in.Group)
	case policy.Place:
		return fmt.Sprintf("place: %s on %s%s", class(in), n, g)
	case policy.Relay:
		return fmt.Sprintf("relay: through %s%s", n, g)
	case policy.Offload:
		if in.Data.Class != "" {
			return fmt.Sprintf("offload: computation over %s to %s%s", class(in), n, g)
		}
		return fmt.Sprintf("offload: computation to %s%s", n, g)
	case policy.Read:
		return fmt.Sprintf("read: %s by %s%s", class(in), n, g)
	}
	return fmt.Sprintf("%s: %s%s", in.Action, n, g)
}

func class(in policy.Input) string {
	var tags []string
	if in.Data.Confidential {
		tags = append(tags, "confidential")
	}
	if in.Data.Encrypted {
		tags = append(tags, "encrypted")
	}
	if len(tags) == 0 {
		return "class " + in.Data.Class
	}
	return fmt.Sprintf("class %s (%s)", in.Data.Class, strings.Join(tags, ", "))
}

func (o *auditOptions) replayLog(cmd *cobra.Command) error {
	evs, err := readLog(o.replay)
	if err != nil {
		return err
	}
	e, err := o.engine(cmd, nil)
	if err != nil {
		return err
	}
	rep, err := policy.Replay(cmd.Context(), evs, e)
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	out := cmd.OutOrStdout()
	if o.format == "json" {
		return writeJSON(out, struct {
			Log    string `json:"log"`
			Policy string `json:"policy"`
			policy.ReplayReport
		}{o.replay, o.policyDir, rep})
	}
	fmt.Fprintf(out, "replayed %d decisions of %s against %s\n", rep.Replayed, o.replay, o.policyName(e))
	if len(rep.Flips) == 0 {
		fmt.Fprintln(out, "no decision would flip")
	} else {
		fmt.Fprintf(out, "%d would flip:\n", len(rep.Flips))
		for _, f := range rep.Flips {
			was, now := "allowed", "denied"
			if !f.Event.Result.Allow {
				was, now = now, was
			}
			fmt.Fprintf(out, "  %s then, %s now (was decided by %s):\n  ", was, now, f.Event.Revision)
			writeEvent(out, f.Event, f.Now)
		}
	}
	if len(rep.Reworded) > 0 {
		fmt.Fprintf(out, "%d would keep their outcome with other reasons:\n", len(rep.Reworded))
		for _, f := range rep.Reworded {
			fmt.Fprint(out, "  ")
			writeEvent(out, f.Event, f.Now)
		}
	}
	return nil
}

func newPolicy() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "work with the Rego trust policies",
		Long: `policy works with the Rego trust policies that decide who may join a group,
invite, hold a data class, relay, run offloaded computation, and read a
confidential class. The default policy is embedded in rime (policies/ in
its source); a group may use its own directory of .rego files.`,
	}
	cmd.AddCommand(newPolicyTest())
	return cmd
}

func newPolicyTest() *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "run the Rego tests of a policy directory",
		Long: `test runs the Rego tests of the policies in DIR (default: the embedded
default policy) with opa test conventions: every rule whose name starts
with test_ must be true, and todo_test_ rules are skipped. Files ending in
_test.rego hold tests; all .rego files under DIR are loaded.

Exit status: 0 every test passed, 1 a test failed or errored (or there
were none), 2 a policy or test does not parse or compile.`,
		Example: "  rime policy test\n  rime policy test ./policies -v\n  rime policy test ./policies --format json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			dir, name := "", "the embedded default policy"
			if len(args) == 1 {
				dir, name = args[0], args[0]
			}
			rep, err := policy.Test(cmd.Context(), dir)
			if err != nil {
				return &exitError{ExitInvalid, err}
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				for _, r := range rep.Results {
					if r.Outcome == "pass" && !verbose {
						continue
					}
					fmt.Fprintf(out, "%s: %s.%s (%s)", strings.ToUpper(r.Outcome), r.Package, r.Name, r.Location)
					if r.Detail != "" {
						fmt.Fprintf(out, ": %s", r.Detail)
					}
					fmt.Fprintln(out)
					if r.Output != "" {
						fmt.Fprintf(out, "  output:\n    %s\n", strings.ReplaceAll(strings.TrimSpace(r.Output), "\n", "\n    "))
					}
				}
				total := len(rep.Results)
				verdict := "PASS"
				if !rep.OK() {
					verdict = "FAIL"
				}
				fmt.Fprintf(out, "%s: %d/%d passed (%d failed, %d errors, %d skipped) in %s\n",
					verdict, rep.Passed, total, rep.Failed, rep.Errored, rep.Skipped, name)
			}
			if rep.Passed == 0 && rep.Failed == 0 && rep.Errored == 0 {
				return &exitError{ExitFailure, fmt.Errorf("policy test: no tests (test_ rules) in %s", name)}
			}
			if !rep.OK() {
				return &exitError{code: ExitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing tests too")
	return cmd
}
