package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBareNumberInPostfixUnits: Postfix reads "maximal_queue_lifetime = 5"
// as five days (its default unit there is d; delay_warning_time's is h).
// relaykeeper read the same line as five seconds, so a migrated main.cf
// bounced every deferred message seconds after its arrival. A bare number
// other than 0 is refused at its line for those keys, naming both
// readings; 0, units and other keys' bare seconds stay as they were.
func TestBareNumberInPostfixUnits(t *testing.T) {
	for _, tc := range []struct {
		line, want string
	}{
		{"max_queue_lifetime = 5", `:2: delivery.max_queue_lifetime: 5 would be 5 seconds; Postfix reads a bare number here as 5 days: write "5d"`},
		{`bounce_queue_lifetime = "3"`, `:2: delivery.bounce_queue_lifetime: 3 would be 3 seconds; Postfix reads a bare number here as 3 days: write "3d"`},
		{"delay_warning = 4", `:2: delivery.delay_warning: 4 would be 4 seconds; Postfix reads a bare number here as 4 hours: write "4h"`},
	} {
		p := filepath.Join(t.TempDir(), "relaykeeper.toml")
		os.WriteFile(p, []byte("[delivery]\n"+tc.line+"\n"), 0o644)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p+tc.want) {
			t.Errorf("%s: Load error %v; want %q", tc.line, err, tc.want)
		}
	}
	p := filepath.Join(t.TempDir(), "relaykeeper.toml")
	os.WriteFile(p, []byte("[delivery]\nmax_queue_lifetime = 0\nbounce_queue_lifetime = \"00\"\ndelay_warning = \"4h\"\nminimal_backoff_time = 90\n"), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Delivery; d.MaxQueueLifetime != 0 || d.BounceQueueLifetime != 0 || d.DelayWarning != 4*time.Hour || d.MinBackoff != 90*time.Second {
		t.Errorf("delivery %v %v %v %v; want 0 0 4h 90s", d.MaxQueueLifetime, d.BounceQueueLifetime, d.DelayWarning, d.MinBackoff)
	}
}
