package spec

import (
	"fmt"
	"sort"

	"cuelang.org/go/cue"
)

// Model is one consistency model from models.cue.
type Model struct {
	Name      string   `json:"name"`
	Weaker    []string `json:"weaker"`
	HAT       string   `json:"hat"`
	Agreement bool     `json:"agreement"`
	Summary   string   `json:"summary"`
}

// Lattice is the order between consistency models, closed transitively.
type Lattice struct {
	Models map[string]Model
	// atLeast[a][b] reports a >= b (a is at least as strong as b).
	atLeast map[string]map[string]bool
}

func decodeLattice(v cue.Value) (*Lattice, error) {
	l := &Lattice{Models: map[string]Model{}, atLeast: map[string]map[string]bool{}}
	if err := v.Decode(&l.Models); err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	for name, m := range l.Models {
		for _, w := range m.Weaker {
			if _, ok := l.Models[w]; !ok {
				return nil, fmt.Errorf("models: %s is weaker than unknown model %q", name, w)
			}
		}
	}
	// Transitive closure by search from each model: the lattice is tiny.
	for name := range l.Models {
		seen := map[string]bool{name: true}
		stack := []string{name}
		for len(stack) > 0 {
			m := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, w := range l.Models[m].Weaker {
				if !seen[w] {
					if w == name {
						return nil, fmt.Errorf("models: cycle through %s", name)
					}
					seen[w] = true
					stack = append(stack, w)
				}
			}
		}
		l.atLeast[name] = seen
	}
	return l, nil
}

// AtLeast reports whether model a is at least as strong as model b.
func (l *Lattice) AtLeast(a, b string) bool { return l.atLeast[a][b] }

// Known reports whether name is a model of the lattice.
func (l *Lattice) Known(name string) bool { _, ok := l.Models[name]; return ok }

// WeakerLevels returns the models strictly weaker than m, grouped by their
// distance from m along `weaker` edges (nearest first, names sorted within
// a level), so relaxations can try the nearest weakening first.
func (l *Lattice) WeakerLevels(m string) [][]string {
	var levels [][]string
	seen := map[string]bool{m: true}
	frontier := []string{m}
	for len(frontier) > 0 {
		var next []string
		for _, f := range frontier {
			for _, w := range l.Models[f].Weaker {
				if !seen[w] {
					seen[w] = true
					next = append(next, w)
				}
			}
		}
		sort.Strings(next)
		if len(next) > 0 {
			levels = append(levels, next)
		}
		frontier = next
	}
	return levels
}

// Dimension is one guarantee dimension and how its values compare.
type Dimension struct {
	Name      string   `json:"-"`
	Kind      string   `json:"kind"`
	Chain     []string `json:"chain"`
	Relaxable bool     `json:"relaxable"`
	// Requirement is the app field the dimension stems from, if named
	// differently.
	Requirement string `json:"requirement"`
	Summary     string `json:"summary"`
}

// ChainIndex returns the rank of v in a chain dimension, weakest 0, or -1.
func (d Dimension) ChainIndex(v string) int {
	for i, c := range d.Chain {
		if c == v {
			return i
		}
	}
	return -1
}
