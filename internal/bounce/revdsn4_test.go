package bounce

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRevDSN4RetFullOnlyForFailure: RFC 3461 section 4.3 says RET applies
// only to a notice that reports a failure; a delay warning or a success
// notice returns the headers only, whatever RET says, and Postfix's
// bounce(8) does so (bounce_warn_service and bounce_trace_service return
// DSN_RET_HDRS). The relay returned the whole message in a "still being
// retried" warning when the client said RET=FULL: a 10 MB attachment back
// to the sender for each warning.
func TestRevDSN4RetFullOnlyForFailure(t *testing.T) {
	for _, k := range []Kind{Delay, Success} {
		env := testEnv()
		env.Ret = "FULL"
		for i := range env.Recipients {
			env.Recipients[i].Notify = "FAILURE,DELAY,SUCCESS"
		}
		n := parse(t, build(t, env, original, k, testOpts()))
		if len(n.parts) != 3 || n.parts[2].ctype != "text/rfc822-headers" {
			var types []string
			for _, p := range n.parts {
				types = append(types, p.ctype)
			}
			t.Errorf("%v notice with RET=FULL: parts %q; want the original's headers as text/rfc822-headers", k, types)
		}
	}
}

// TestRevDSN4LocalReplyBlamesNoHost: a refusal the relay made itself (a
// client filter's "550 5.7.1 ...", a transport's error:) is recorded
// without the command and host an upstream's reply has. With a smarthost
// configured, the notice said "host SMARTHOST said:" and gave it as
// Remote-MTA, though the smarthost never saw the message.
func TestRevDSN4LocalReplyBlamesNoHost(t *testing.T) {
	env := testEnv()
	env.Recipients = []spool.Recipient{{Addr: "bob@example.net", Status: spool.Bounced, Reply: "550 5.7.1 not from here"}}
	n := parse(t, build(t, env, original, Failure, testOpts()))
	g := dsnGroups(t, n.parts[1].body)
	if len(g) != 2 || g[1]["remote-mta"] != "" || g[1]["status"] != "5.7.1" || g[1]["diagnostic-code"] != "smtp; 550 5.7.1 not from here" {
		t.Errorf("delivery status:\n%s", n.parts[1].body)
	}
	if text := string(n.parts[0].body); strings.Contains(text, " said:") {
		t.Errorf("the text blames a host:\n%s", text)
	}
}
