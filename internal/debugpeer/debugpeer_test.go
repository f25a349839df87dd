package debugpeer

import (
	"net/netip"
	"testing"
)

func TestList(t *testing.T) {
	if New(nil) != nil {
		t.Error("an empty list should disable tracing")
	}
	d := New([]string{"192.0.2.0/24", "198.51.100.7", "example.com", ".example.org"})
	for ip, want := range map[string]bool{"192.0.2.9": true, "198.51.100.7": true, "198.51.100.8": false, "::ffff:192.0.2.1": true} {
		if got := d.Client(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Client(%s) = %v; want %v", ip, got, want)
		}
	}
	for addr, want := range map[string]bool{"mx.example.com:25": true, "example.com:587": true, "[192.0.2.1]:25": true,
		"badexample.com:25": false, "smtp.example.org:25": true, "example.net:25": false} {
		if got := d.Upstream(addr); got != want {
			t.Errorf("Upstream(%s) = %v; want %v", addr, got, want)
		}
	}
}
