package config

import (
	"testing"
	"time"
)

// TestAud6FilterTimeoutBoundsTheVerifier: E-MailRelay's --filter-timeout is
// the time limit of its address verifier too (its Verifier::Config takes
// the filter timeout). relaykeeper's switch set only the filters' limit, so
// "--address-verifier slow.sh --filter-timeout 300" still cut the
// verifier off after 60 seconds (450 for every recipient), and
// "--filter-timeout 5" left a hung verifier holding each RCPT for a minute.
func TestAud6FilterTimeoutBoundsTheVerifier(t *testing.T) {
	cl, err := ParseSwitches([]string{"--as-server", "--address-verifier", "/bin/true", "--filter-timeout", "300"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cl.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Filter.Timeout != 300*time.Second || cfg.Policy.VerifierTimeout != 300*time.Second {
		t.Errorf("--filter-timeout 300: filter timeout %v, verifier timeout %v; want 5m0s for both",
			cfg.Filter.Timeout, cfg.Policy.VerifierTimeout)
	}
}
