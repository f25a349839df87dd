package stats

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzUpstreamRefusal: any reply text, the upstream's to write, is read
// without a panic, and only a real reply code counts.
func FuzzUpstreamRefusal(f *testing.F) {
	for _, s := range []string{"250 2.0.0 OK", "550-5.7.1 [1.2.3.4 12] likely unsolicited", "421 4.7.28", "", "5", "999 x",
		"dial tcp: connection refused", "250", "2500 x", "\x00\xff"} {
		f.Add(s, "192.0.2.1:25")
	}
	f.Fuzz(func(t *testing.T, reply, client string) {
		refused, ok := UpstreamRefusal(reply)
		if ok {
			code, err := strconv.Atoi(reply[:3])
			if err != nil || code < 200 || code > 599 || refused != (code >= 400) || strings.Contains(reply, " 4.4.") && strings.HasPrefix(reply[3:], " 4.4.") {
				t.Fatalf("UpstreamRefusal(%q) = %v, %v", reply, refused, ok)
			}
		} else if refused {
			t.Fatalf("UpstreamRefusal(%q) refused without a reply", reply)
		}
		var r Rates
		r.Add(time.Unix(0, 0), ClientIP(client), refused)
		if got := r.List(time.Time{}); len(got) == 0 {
			t.Fatal("nothing counted")
		}
	})
}
