package cli

import (
	"encoding/json"
	"net/http"

	"github.com/rime-dev/rime/network/faultnet"
)

// faultsHandler serves GET (the faults in force) and POST (replace them;
// the body is faultnet.Faults' JSON) of a node started with --faults.
func faultsHandler(n *faultnet.Network) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost:
			var f faultnet.Faults
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&f); err != nil {
				http.Error(w, "faults: "+err.Error()+`; want {"loss":0.05,"duplicate":0,"delay":"50ms","jitter":"10ms"}`, http.StatusBadRequest)
				return
			}
			if err := n.Set(f); err != nil {
				http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
				return
			}
		default:
			http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(n.Faults())
	}
}
