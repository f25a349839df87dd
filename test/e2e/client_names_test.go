package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestClientNames runs the relay with --client-names against the harness's
// DNS server: a client whose PTR name leads back to its address
// (127.0.0.7, mx.friend.test) is known by that name in the mail log's
// connect line and the Received header, and the welcomelist's host-name
// pattern spares it when Gmail refuses its mail; a client whose PTR claims
// the same name without the forward record (127.0.0.8) is "unknown", and
// is banned.
func TestClientNames(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
7.0.0.127.in-addr.arpa.  PTR  mx.friend.test.
8.0.0.127.in-addr.arpa.  PTR  mx.friend.test.
mx.friend.test.          A    127.0.0.7
`)
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	gmail.answer("liar@gmail.test", stData, gmailUnsolicited)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{welcome: `^mx\.friend\.test$` + "\n",
		extra: []string{"--client-names", "--client-names-server", dns.Addr()}})

	tx, err := sendFrom(r.addr(), "127.0.0.7", "alice@friend.example", []string{"spam@gmail.test"}, gmailMessage("alice@friend.example", "named"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send from 127.0.0.7: %v %+v", err, tx)
	}
	id := queuedID(t, tx.Final)
	tx, err = sendFrom(r.addr(), "127.0.0.8", "mallory@liar.example", []string{"liar@gmail.test"}, gmailMessage("mallory@liar.example", "liar"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send from 127.0.0.8: %v %+v", err, tx)
	}

	for ip, want := range map[string]string{"127.0.0.7": "mx.friend.test", "127.0.0.8": "unknown"} {
		c := r.waitEvent("connect", 10*time.Second, func(e *maillog.Entry) bool { return strings.HasPrefix(e.Get("client"), ip+":") })
		if c.Get("name") != want {
			t.Errorf("connect line %v; want name=%s", c.Fields, want)
		}
	}
	r.waitEvent("spare", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.0.7" && e.Get("id") == id })
	r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.0.8" })
	if !waitFor(10*time.Second, func() bool { return len(gmail.copiesTo("spam@gmail.test")) == 1 }) {
		t.Fatalf("no encapsulated copy for the welcomelisted client")
	}
	if es := enforceEvents(r, "127.0.0.7"); actionOf(es) != "spare+encapsulate" {
		t.Errorf("events about 127.0.0.7: %v; want spare and encapsulate", fieldsOf(es))
	}
	if data, _ := os.ReadFile(enforceFile(r, "bans")); strings.Contains(string(data), "127.0.0.7") || !strings.Contains(string(data), "127.0.0.8") {
		t.Errorf("ban file:\n%s\nwant 127.0.0.8 and not 127.0.0.7", data)
	}

	// What Gmail got carries the names in the relay's Received header.
	for rcpt, want := range map[string]string{
		"spam@gmail.test": "Received: from client.e2e.test (mx.friend.test [127.0.0.7])",
		"liar@gmail.test": "Received: from client.e2e.test (unknown [127.0.0.8])",
	} {
		found := false
		for _, tx := range gmail.txs(func(tx hTx) bool { return len(tx.Rcpts) > 0 && tx.Rcpts[0].Addr == rcpt }) {
			found = found || strings.Contains(string(tx.Data), want)
		}
		if !found {
			t.Errorf("no message to %s with %q", rcpt, want)
		}
	}
}
