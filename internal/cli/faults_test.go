package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rime-dev/rime/network/faultnet"
	"github.com/rime-dev/rime/network/memnet"
)

func TestFaultsEndpoint(t *testing.T) {
	n := faultnet.Wrap(memnet.New(1), 1)
	h := faultsHandler(n)
	post := func(body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodPost, "/v1/faults", strings.NewReader(body)))
		return rec
	}
	if rec := post(`{"loss":0.1,"duplicate":0.02,"delay":"40ms","jitter":"5ms"}`); rec.Code != http.StatusOK {
		t.Fatalf("valid faults: %d %s", rec.Code, rec.Body)
	}
	if got, want := n.Faults(), (faultnet.Faults{Loss: 0.1, Duplicate: 0.02, Delay: 40 * time.Millisecond, Jitter: 5 * time.Millisecond}); got != want {
		t.Fatalf("faults in force %+v, want %+v", got, want)
	}
	for _, bad := range []string{`{"loss":2}`, `{"delay":"soon"}`, `{"los":0.1}`, `not json`} {
		if rec := post(bad); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, rec.Code)
		}
	}
	if got := n.Faults(); got.Loss != 0.1 {
		t.Fatalf("a refused body changed the faults to %+v", got)
	}
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodGet, "/v1/faults", nil))
	if !strings.Contains(rec.Body.String(), `"delay":"40ms"`) {
		t.Fatalf("GET: %s", rec.Body)
	}
}

func FuzzFaultsBody(f *testing.F) {
	f.Add(`{"loss":0.1,"duplicate":0,"delay":"50ms","jitter":"10ms"}`)
	f.Add(`{"delay":"-1h"}`)
	f.Fuzz(func(t *testing.T, body string) {
		n := faultnet.Wrap(memnet.New(1), 1)
		rec := httptest.NewRecorder()
		faultsHandler(n)(rec, httptest.NewRequest(http.MethodPost, "/v1/faults", strings.NewReader(body)))
		if rec.Code == http.StatusOK {
			if err := n.Faults().Validate(); err != nil {
				t.Fatalf("accepted %q into invalid faults: %v", body, err)
			}
		}
	})
}
