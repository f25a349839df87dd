package admin

import (
	"net/http"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/auth"
)

// TestRev22RightPasswordDoesNotClearGuesses: behind the TLS proxy that
// docs/admin.md recommends (or an SSH tunnel, or on a shared host) every
// client of the admin API has the same address. The dashboard's right
// password every 5 s (a scrape every 15 s) cleared that address's count
// of wrong ones, so a guesser there had failure_limit - 1 guesses per
// refresh, without end. Wrong passwords now expire with the window only.
func TestRev22RightPasswordDoesNotClearGuesses(t *testing.T) {
	th := auth.NewThrottle(3, time.Hour, nil)
	f := newFixture(t, Options{Password: "s3cret", Throttle: th})
	a := f.api(t)
	guesses := 0
	for round := range 10 {
		for range 2 {
			code, _ := a.do("GET", "/api/status", map[string]string{"Authorization": "Bearer guess"}, nil)
			if code == http.StatusUnauthorized {
				guesses++
			}
		}
		// The dashboard's refresh, with the right password.
		a.do("GET", "/api/status", map[string]string{"Authorization": "Bearer s3cret"}, nil)
		_ = round
	}
	if guesses > 3 {
		t.Errorf("%d wrong passwords were checked from one address within the window; want at most failure_limit (3)", guesses)
	}
}
