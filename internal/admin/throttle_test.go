package admin

import (
	"net/http"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/auth"
)

var _ Throttle = (*auth.Throttle)(nil)

// TestPasswordThrottle: wrong passwords count per address across
// connections, on both front ends together; past the limit even the right
// password is refused, on the line protocol and over HTTP, and a request
// without credentials (a browser's first) is not counted as a guess.
func TestPasswordThrottle(t *testing.T) {
	th := auth.NewThrottle(3, time.Hour, nil)
	f := newFixture(t, Options{Password: "s3cret", Throttle: th})
	f.serveText(t, nil)
	a := f.api(t)

	for range 5 {
		if code, _ := a.do("GET", "/api/status", nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("no credentials = %d; want 401", code)
		}
	}
	if got, want := f.dial(t).cmd("password s3cret"), []string{"OK"}; len(got) != 1 || got[0] != want[0] {
		t.Fatalf("right password after requests without credentials = %q; want %q", got, want)
	}
	for i := range 2 {
		c := f.dial(t)
		c.PrintfLine("password guess%d", i)
		if got, want := c.closing(), "error: wrong password\r\n"; got != want {
			t.Errorf("guess %d: server sent %q; want %q", i, got, want)
		}
	}
	if code, _ := a.do("GET", "/api/status", map[string]string{"Authorization": "Bearer guess"}, nil); code != http.StatusUnauthorized {
		t.Errorf("third wrong password (HTTP) = %d; want 401", code)
	}
	c := f.dial(t)
	c.PrintfLine("password s3cret")
	if got, want := c.closing(), "error: too many wrong passwords from your address; try again later\r\n"; got != want {
		t.Errorf("right password past the limit: server sent %q; want %q", got, want)
	}
	code, body := a.do("GET", "/api/status", map[string]string{"Authorization": "Bearer s3cret"}, nil)
	if code != http.StatusTooManyRequests {
		t.Errorf("right password past the limit (HTTP) = %d; want 429", code)
	}
	errorOf(t, body)
}
