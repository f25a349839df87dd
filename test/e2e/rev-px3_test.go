package e2e

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestRevPX3ProxyEnforcerLinesNameTheMessage: in proxy mode the enforcer's
// lines about a message refused at the final dot carry the message's id,
// the one on its proxy line, as in store-and-forward: "grep id=ID" finds
// everything that happened to a message (docs/maillog.md). They said
// id="" (ban, report) and orig="" (encapsulate).
func TestRevPX3ProxyEnforcerLinesNameTheMessage(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	gmail.answer("weird@gmail.test", stData, gmailUnknown)
	gmail.answer("dmarc@gmail.test", stData, gmailDMARC)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true})

	for _, c := range []struct{ ip, to, event, key string }{
		{"127.0.5.1", "spam@gmail.test", "ban", "id"},
		{"127.0.5.2", "weird@gmail.test", "report", "id"},
		{"127.0.5.3", "dmarc@gmail.test", "encapsulate", "orig"},
	} {
		if _, err := sendFrom(r.addr(), c.ip, "a@ok.example", []string{c.to}, gmailMessage("a@ok.example", c.event)); err != nil {
			t.Fatalf("%s: %v", c.to, err)
		}
		ip := c.ip
		byClient := func(e *maillog.Entry) bool { return hostOf(e.Get("client")) == ip }
		proxy := r.waitEvent("proxy", 5*time.Second, byClient)
		ev := r.waitEvent(c.event, 5*time.Second, byClient)
		if id := proxy.Get("id"); id == "" || ev.Get(c.key) != id {
			t.Errorf("%s line %v; want %s=%s, the proxy line's id", c.event, ev.Fields, c.key, id)
		}
	}
}
