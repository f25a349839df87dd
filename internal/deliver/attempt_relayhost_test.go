package deliver

import "testing"

func TestRelayHost(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:2525", "127.0.0.1"},
		{"smarthost.example:587", "smarthost.example"},
		{"[::1]:25", "::1"},
		{"mx.example.net[192.0.2.25]", "mx.example.net[192.0.2.25]"},
		{"mx.example.net[192.0.2.25:2525]", "mx.example.net[192.0.2.25]"},
		{"mx.example.net[[2001:db8::1]:25]", "mx.example.net[2001:db8::1]"},
		{"mx.example.net[2001:db8::1]", "mx.example.net[2001:db8::1]"},
		{"none", "none"},
	} {
		if got := relayHost(tt.in); got != tt.want {
			t.Errorf("relayHost(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
