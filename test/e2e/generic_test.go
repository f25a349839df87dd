package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestGenericMaps: Postfix's smtp_generic_maps, in every relay-through-
// Gmail guide's main.cf, which relaykeeper had no key for: the envelope
// and the header of mail from any client (local_header_rewrite_clients
// says nothing here) leave with the addresses the table gives, after the
// virtual aliases (team@ expands to ops@old.example, then mapped), one
// lookup each, the client's recipient going as ORCPT; the proxy maps at
// MAIL and RCPT.
func TestGenericMaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	generic := writeFile(t, dir, "generic", "root@host.local  alerts@example.com\n@old.example  @new.example\n# not looked up again:\nalerts@example.com  twice@example.com\n", 0o644)
	msg := "From: Cron Daemon <root@host.local>\r\nTo: ops@old.example\r\nCc: keep@other.example\r\nSubject: disk root@host.local\r\n\r\nroot@host.local says hello\r\n"
	wantHead := "From: Cron Daemon <alerts@example.com>\r\nTo: ops@new.example\r\nCc: keep@other.example\r\nSubject: disk root@host.local\r\n"
	for _, tc := range []struct {
		name, mode, extra string
		rcpts, want       []string
	}{
		{"store", "--as-server", `virtual_alias_maps = ["inline:{ team@corp.example=ops@old.example }"]`,
			[]string{"team@corp.example", "keep@other.example"},
			[]string{"ops@new.example ORCPT=rfc822;team@corp.example", "keep@other.example"}},
		{"proxy", "--as-proxy", "",
			[]string{"ops@old.example", "keep@other.example"},
			[]string{"ops@new.example ORCPT=rfc822;ops@old.example", "keep@other.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "DSN", "ENHANCEDSTATUSCODES"}})
			cfg := writeConfig(t, fmt.Sprintf("[rewrite]\nsmtp_generic_maps = [\"hash:%s\"]\nlocal_header_rewrite_clients = [\"permit_sasl_authenticated\"]\n%s\n", generic, tc.extra))
			args := []string{tc.mode, "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg,
				"--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1"}
			if tc.mode == "--as-proxy" {
				args = []string{tc.mode, up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg}
			}
			r := startRelay(t, "127.0.0.1", args...)
			mustSend(t, r.addr(), "root@host.local", tc.rcpts, msg)
			tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
			if tx.MailFrom != "alerts@example.com" {
				t.Errorf("envelope sender %q; want alerts@example.com (one lookup)", tx.MailFrom)
			}
			var got []string
			for _, rc := range tx.Rcpts {
				got = append(got, strings.TrimSpace(rc.Addr+" "+rc.Params))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("RCPT upstream %q; want %q", got, tc.want)
			}
			head, body, _ := strings.Cut(string(tx.Data), "\r\n\r\n")
			for _, f := range strings.SplitAfter(strings.TrimSuffix(wantHead, "\r\n"), "\r\n") {
				if !strings.Contains(head+"\r\n", strings.TrimSuffix(f, "\r\n")+"\r\n") {
					t.Errorf("header field %q missing:\n%s", f, head)
				}
			}
			if body != "root@host.local says hello\r\n" {
				t.Errorf("body %q; the body is never mapped", body)
			}
		})
	}
}
