package agent

import (
	"fmt"
	"net/http"
)

// HealthHandler serves /healthz (the loop is alive) and /readyz (the config
// is valid and the last sync succeeded). Failures answer 503 with the reason.
func (a *Agent) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Alive() {
			http.Error(w, fmt.Sprintf("sync loop stuck for over %s", stuckAfter), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := a.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
