package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestQ20PostfixTimeUnits: Postfix's time units d (days) and w (weeks), in
// which its lifetimes are written (maximal_queue_lifetime = 5d), are read
// as such. "5d" was refused at start as an invalid duration, although the
// migration table points maximal_queue_lifetime at max_queue_lifetime.
func TestQ20PostfixTimeUnits(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5d":     5 * 24 * time.Hour,
		"1w":     7 * 24 * time.Hour,
		"1w2d":   9 * 24 * time.Hour,
		"1d12h":  36 * time.Hour,
		"2d30m":  48*time.Hour + 30*time.Minute,
		" 3d ":   72 * time.Hour,
		"0d":     0,
		"1.5d":   36 * time.Hour,
		"12h":    12 * time.Hour,
		"4000s":  4000 * time.Second,
		"1h1d":   25 * time.Hour,
		"1d1w1d": 9 * 24 * time.Hour,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "5dd", "5d x", "-d", "99999999999w", "5y", "1d-", "d5", "1.5.5d", "1..d", ".d"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v; want an error", in, got)
		}
	}

	p := filepath.Join(t.TempDir(), "relaykeeper.toml")
	os.WriteFile(p, []byte("[delivery]\nmax_queue_lifetime = \"5d\"\nbounce_queue_lifetime = \"1w\"\n"), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Delivery.MaxQueueLifetime != 120*time.Hour || c.Delivery.BounceQueueLifetime != 168*time.Hour {
		t.Errorf("lifetimes %v, %v; want 120h, 168h", c.Delivery.MaxQueueLifetime, c.Delivery.BounceQueueLifetime)
	}
}
