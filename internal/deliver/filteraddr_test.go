package deliver

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestContentFilterAddr: content_filter and FILTER take Postfix's
// transport:nexthop form as the Postfix guides write it, and relaykeeper's
// bare host:port. Before, a configured "scan:localhost:10025" was dialled
// as written ("too many colons in address"): every message deferred.
func TestContentFilterAddr(t *testing.T) {
	for _, tt := range []struct{ configured, filterTo, want string }{
		{"scan:localhost:10025", "", "localhost:10025"},
		{"scan:[127.0.0.1]:10025", "", "127.0.0.1:10025"},
		{"scan:[::1]:10025", "", "[::1]:10025"},
		{"127.0.0.1:10025", "", "127.0.0.1:10025"},
		{"localhost:10025", "", "localhost:10025"},
		{"[127.0.0.1]:10025", "", "127.0.0.1:10025"},
		{"127.0.0.1", "", "127.0.0.1:25"},
		{"filter:dummy", "", "dummy:25"},
		{"scan:localhost:smtp", "", "localhost:25"},
		{"", "smtp:[10.0.0.1]", "10.0.0.1:25"},
		{"127.0.0.1:10025", "foo:127.0.0.2:10026", "127.0.0.2:10026"},
		{"", "127.0.0.3:10027", "127.0.0.3:10027"},
		{"", "", ""},
	} {
		env := &spool.Envelope{FilterTo: tt.filterTo}
		if got := contentFilter(env, tt.configured); got != tt.want {
			t.Errorf("contentFilter(FilterTo %q, configured %q) = %q; want %q", tt.filterTo, tt.configured, got, tt.want)
		}
	}
	if got := contentFilter(&spool.Envelope{Filtered: true}, "scan:localhost:10025"); got != "" {
		t.Errorf("contentFilter of a filtered message = %q; want \"\"", got)
	}
}
