package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/rime-dev/rime/network/faultnet"
)

// faultsJSON is the body of /v1/faults: probabilities, and durations as
// Go duration strings ("50ms").
type faultsJSON struct {
	Loss      float64 `json:"loss"`
	Duplicate float64 `json:"duplicate"`
	Delay     string  `json:"delay,omitempty"`
	Jitter    string  `json:"jitter,omitempty"`
}

func (j faultsJSON) faults() (faultnet.Faults, error) {
	f := faultnet.Faults{Loss: j.Loss, Duplicate: j.Duplicate}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{j.Delay, &f.Delay}, {j.Jitter, &f.Jitter}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return f, fmt.Errorf("%q: want a duration such as 50ms", d.s)
		}
		*d.dst = v
	}
	return f, f.Validate()
}

func faultsOf(f faultnet.Faults) faultsJSON {
	return faultsJSON{Loss: f.Loss, Duplicate: f.Duplicate, Delay: f.Delay.String(), Jitter: f.Jitter.String()}
}

// faultsHandler serves GET (the faults in force) and POST (replace them)
// of a node started with --faults.
func faultsHandler(n *faultnet.Network) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost:
			var j faultsJSON
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&j); err != nil {
				http.Error(w, "faults: "+err.Error()+`; want {"loss":0.05,"duplicate":0,"delay":"50ms","jitter":"10ms"}`, http.StatusBadRequest)
				return
			}
			f, err := j.faults()
			if err == nil {
				err = n.Set(f)
			}
			if err != nil {
				http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
				return
			}
		default:
			http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(faultsOf(n.Faults()))
	}
}
