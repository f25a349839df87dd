package pop3

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/auth"
)

var _ Throttle = (*auth.Throttle)(nil)

// TestThrottleAcrossConnections is issue 10's attack: twenty wrong guesses
// spread over parallel connections, then the right password. The per-client
// throttle must refuse it, where the per-session limit alone would not.
func TestThrottleAcrossConnections(t *testing.T) {
	th := auth.NewThrottle(5, time.Minute, nil)
	_, addr := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users, Throttle: th})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			c := dial(t, addr)
			// Under the session's limit of 3; a throttled session ends,
			// so errors just stop the guessing.
			for range 2 {
				for _, line := range []string{"USER alice", "PASS wrong"} {
					if c.PrintfLine("%s", line) != nil {
						return
					}
					if _, err := c.ReadLine(); err != nil {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	c := dial(t, addr)
	c.ok("USER alice")
	if got := c.cmd("PASS " + users["alice"]); strings.HasPrefix(got, "+OK") {
		t.Fatalf("right password after 20 parallel wrong guesses: %q; want a refusal", got)
	}
	// Another address (here: none is throttled) is not affected, and a
	// success forgets the failures.
	th2 := auth.NewThrottle(5, time.Minute, nil)
	_, addr2 := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users, Throttle: th2})
	c2 := dial(t, addr2)
	c2.ok("USER alice")
	c2.ok("PASS " + users["alice"])
}

// TestRemoteClientsRefused: without RemoteClients only local addresses are
// served. The test cannot connect from a public address over loopback, so
// it checks the rule itself.
func TestRemoteClientsRule(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"10.1.2.3", true}, {"192.168.1.1", true},
		{"fe80::1", true}, {"192.0.2.1", false}, {"2001:db8::1", false}, {"::ffff:127.0.0.1", true},
	}
	for _, tt := range tests {
		if got := localClient(&net.TCPAddr{IP: net.ParseIP(tt.ip)}); got != tt.want {
			t.Errorf("localClient(%s) = %v; want %v", tt.ip, got, tt.want)
		}
	}
}
