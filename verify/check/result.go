package check

import "fmt"

// Names of the checks, as they appear in Result.Check. The consistency
// ones are the model names of the app spec's `consistency`; convergence
// is what "eventual" promises.
const (
	CheckLinearizable = "linearizable"
	CheckSequential   = "sequential"
	CheckCausal       = "causal"
	CheckConvergence  = "convergence"
	CheckDurability   = "durability"
	CheckAvailability = "availability"
)

// MaxViolations is how many violations a Result lists; the rest are only
// counted in Omitted, so that one systematic fault does not bury the
// report.
const MaxViolations = 50

// Result is one checker's verdict on one history.
type Result struct {
	Check string `json:"check"`
	// OK: the property holds. False both when it is violated and when
	// the checker could not decide (Unknown).
	OK bool `json:"ok"`
	// Unknown: the checker gave up (porcupine's timeout) or the history
	// lacks what it needs; Note says why. An unknown result is not a pass.
	Unknown bool `json:"unknown,omitempty"`
	// Note explains an unknown result, or a pass that checked nothing
	// (for example, more nodes lost than the durability promise covers).
	Note       string      `json:"note,omitempty"`
	Violations []Violation `json:"violations,omitempty"`
	// Omitted counts violations found beyond MaxViolations.
	Omitted int `json:"omitted,omitempty"`
	// HTML is the path of porcupine's visualization of the violation,
	// when the caller asked for one.
	HTML string `json:"html,omitempty"`
}

// Violation is one counterexample: what is wrong, in a sentence, and the
// operations (and nodes) that show it.
type Violation struct {
	Explain string   `json:"explain"`
	Ops     []Op     `json:"ops,omitempty"`
	Nodes   []string `json:"nodes,omitempty"`
}

// String renders a result for a terminal.
func (r Result) String() string {
	switch {
	case r.OK && r.Note != "":
		return fmt.Sprintf("%s: ok (%s)", r.Check, r.Note)
	case r.OK:
		return r.Check + ": ok"
	case r.Unknown:
		return fmt.Sprintf("%s: unknown (%s), %d violations listed", r.Check, r.Note, len(r.Violations))
	}
	return fmt.Sprintf("%s: violated, %d violations", r.Check, len(r.Violations)+r.Omitted)
}

// collector gathers violations up to MaxViolations.
type collector struct {
	vs      []Violation
	omitted int
}

func (c *collector) add(v Violation) {
	if len(c.vs) >= MaxViolations {
		c.omitted++
		return
	}
	c.vs = append(c.vs, v)
}

func (c *collector) addf(ops []Op, format string, args ...any) {
	c.add(Violation{Explain: fmt.Sprintf(format, args...), Ops: ops})
}

func (c *collector) empty() bool { return len(c.vs) == 0 && c.omitted == 0 }

// result turns what was collected into a verdict.
func (c *collector) result(check string) Result {
	return Result{Check: check, OK: c.empty(), Violations: c.vs, Omitted: c.omitted}
}
