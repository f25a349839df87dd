package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// startQuotaPolicy is a policy server on 127.0.0.1 that refuses a message
// whose size attribute is over limit ("action=REJECT quota exceeded"),
// lets the rest through, and sends each request's attributes on the
// channel: a size quota such as policyd-rate-limit's, asked at
// END-OF-MESSAGE.
func startQuotaPolicy(t *testing.T, limit int) (string, <-chan map[string]string) {
	return startAnsweringPolicy(t, func(attrs map[string]string) string {
		if n, _ := strconv.Atoi(attrs["size"]); n > limit {
			return "REJECT quota exceeded"
		}
		return "DUNNO"
	})
}

// TestEndOfDataRestrictions: policy.end_of_data_restrictions (Postfix's
// smtpd_end_of_data_restrictions) asks a policy service once the message
// has come, with protocol_state END-OF-MESSAGE, the message's real size
// (a client may declare none) and its queue id. A refusal is the reply to
// the final dot, in Postfix's words, and nothing is kept or sent on: not
// in store-and-forward mode, and not by the proxy, whose upstream never
// sees the final dot. postgrey, asked there, greylists as at RCPT.
func TestEndOfDataRestrictions(t *testing.T) {
	t.Parallel()
	const limit = 2000
	big := message("big") + strings.Repeat(strings.Repeat("x", 70)+"\n", 60)
	for _, mode := range []string{"store", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			addr, reqs := startQuotaPolicy(t, limit)
			sink := harness.StartSink(t, harness.SinkOptions{})
			cfg := writeConfig(t, fmt.Sprintf("[policy]\nend_of_data_restrictions = [\"check_policy_service inet:%s\"]\n", addr))
			spool := t.TempDir()
			args := []string{"--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect"}
			if mode == "proxy" {
				args = []string{"--as-proxy", sink.Addr()}
			}
			r := startRelay(t, "127.0.0.1", append(args, "--interface", "127.0.0.1", "--spool-dir", spool, "--config", cfg)...)

			tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("small"))
			if tx.Final.code() != 250 {
				t.Fatalf("small message: final reply %q; want 250", tx.Final)
			}
			req := <-reqs
			for k, want := range map[string]string{"protocol_state": "END-OF-MESSAGE", "recipient_count": "1",
				"recipient": "bob@example.net", "sender": "alice@example.org"} {
				if req[k] != want {
					t.Errorf("request attribute %s = %q; want %q", k, req[k], want)
				}
			}
			if n, _ := strconv.Atoi(req["size"]); n < len(message("small")) || n > limit {
				t.Errorf("request size = %q; want the message's size", req["size"])
			}
			if req["queue_id"] == "" {
				t.Errorf("request queue_id is empty; want the message's id")
			}

			tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, big)
			if want := "554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: quota exceeded"; tx.Final.String() != want {
				t.Errorf("big message: final reply %q (%v); want %q", tx.Final, err, want)
			}
			sink.WaitCount(t, 1, 15*time.Second)
			time.Sleep(time.Second)
			if n := sink.Count(); n != 1 {
				t.Errorf("the upstream has %d messages; want only the small one", n)
			}
			if mode == "store" {
				checkSpoolEmpty(t, spool)
			}
		})
	}

	t.Run("postgrey", func(t *testing.T) {
		t.Parallel()
		pg := startPostgrey(t, 60)
		r := startPolicyRelay(t, fmt.Sprintf("[policy]\nend_of_data_restrictions = [\"check_policy_service inet:%s\"]\n", pg))
		a := tryMessage(t, r.addr(), "127.0.0.1", "alice@example.org", "bob@example.net")
		if want := "450 4.2.0 <END-OF-MESSAGE>: End-of-data rejected: Greylisted"; !strings.HasPrefix(a.final.String(), want) {
			t.Errorf("final reply %q; want postgrey's %q...", a.final, want)
		}
	})
}
