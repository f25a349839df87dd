package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// rewriteMessage is a message as a script on the relay's own host would
// send it, with local addresses a provider refuses.
const rewriteMessage = "From: Cron Daemon <root@host.local>\r\nTo: ops@old.example, \"Bob\" <bob+alerts@old.example>\r\nCc: keep@other.example\r\nSubject: disk root@host.local\r\n\r\nroot@host.local says hello\r\n"

// TestCanonicalMaps: Postfix's sender_canonical_maps and
// recipient_canonical_maps as the relay receives mail, in both modes.
// The envelope is mapped for every client; the header's address fields
// for the clients local_header_rewrite_clients names (Postfix's default:
// the relay's own host), with display names and other fields kept, and
// the body never touched.
func TestCanonicalMaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sender := writeFile(t, dir, "sender_canonical", "root@host.local  alerts@example.com\n", 0o644)
	rcpt := writeFile(t, dir, "recipient_canonical", "@old.example  @new.example\n", 0o644)
	wantHead := "From: Cron Daemon <alerts@example.com>\r\nTo: ops@new.example, \"Bob\" <bob+alerts@new.example>\r\nCc: keep@other.example\r\nSubject: disk root@host.local\r\n\r\nroot@host.local says hello\r\n"

	for _, tc := range []struct {
		name, mode, clients string
		headers             bool
	}{
		{"store", "--as-server", `["permit_inet_interfaces"]`, true},
		{"proxy", "--as-proxy", `["permit_inet_interfaces"]`, true},
		{"authenticated-only", "--as-server", `["permit_sasl_authenticated"]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := harness.NewFakeSMTP(t, harness.Script{})
			cfg := writeConfig(t, fmt.Sprintf(`[rewrite]
sender_canonical_maps = ["hash:%s"]
recipient_canonical_maps = ["hash:%s"]
local_header_rewrite_clients = %s
`, sender, rcpt, tc.clients))
			args := []string{tc.mode, "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg}
			if tc.mode == "--as-server" {
				args = append(args, "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1")
			} else {
				args = []string{tc.mode, up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg}
			}
			r := startRelay(t, "127.0.0.1", args...)
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO host.local")
			if _, err := c.send("root@host.local", []string{"ops@old.example", "bob+alerts@old.example"}, rewriteMessage); err != nil {
				t.Fatal(err)
			}
			c.cmd("QUIT")
			c.Close()
			txs := up.WaitTransactions(t, 1, 15*time.Second)
			tx := txs[0]
			if tx.MailFrom != "alerts@example.com" {
				t.Errorf("envelope sender %q; want alerts@example.com", tx.MailFrom)
			}
			var got []string
			for _, r := range tx.Rcpts {
				got = append(got, r.Addr)
			}
			if strings.Join(got, " ") != "ops@new.example bob+alerts@new.example" {
				t.Errorf("envelope recipients %q", got)
			}
			data := string(tx.Data)
			want := wantHead
			if !tc.headers {
				want = rewriteMessage
			}
			wantFields, wantBody, _ := strings.Cut(want, "\r\n\r\n")
			head, body, _ := strings.Cut(data, "\r\n\r\n")
			for _, f := range strings.SplitAfter(wantFields, "\r\n") {
				if !strings.Contains(head+"\r\n", strings.TrimSuffix(f, "\r\n")+"\r\n") {
					t.Errorf("header field %q missing:\n%s", f, head)
				}
			}
			if body != wantBody {
				t.Errorf("body %q; want %q", body, wantBody)
			}
		})
	}
}

// TestCanonicalTargetNeverBlocked: after sender_canonical_maps, Gmail's
// domain-reputation refusal names the domain the relay mapped into, its
// owner's own: it is reported, never blocked, while the client is
// still sanctioned as before.
func TestCanonicalTargetNeverBlocked(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("dom@gmail.test", stData, gmailDomainReputation)
	dir := t.TempDir()
	canon := writeFile(t, dir, "sender_canonical", "@bad.example  @owner.example\n", 0o644)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: fmt.Sprintf("[enforce]\nban_delay = \"0s\"\n[rewrite]\nsender_canonical_maps = [\"hash:%s\"]\n", canon)})
	tx, err := sendFrom(r.addr(), "127.0.0.1", "x@bad.example", []string{"dom@gmail.test"}, gmailMessage("x@bad.example", "mapped"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	if rep := r.waitEvent("report", 10*time.Second, nil); !strings.Contains(fmt.Sprint(rep.Fields), "owner.example") {
		t.Errorf("report line %v; want it to name owner.example", rep)
	}
	if data, _ := os.ReadFile(enforceFile(r, "sender_access")); strings.Contains(string(data), "owner.example") {
		t.Errorf("the owner's own (mapped-into) domain was blocked:\n%s", data)
	}
}

// TestMasqueradeDomains: rewrite.masquerade_domains (Postfix's
// masquerade_domains) strips the host from the envelope sender and the
// header's addresses of mail from the relay's own host, in both modes,
// after the canonical maps; the envelope recipient and root stay, as by
// Postfix's default masquerade_classes and the exception.
func TestMasqueradeDomains(t *testing.T) {
	t.Parallel()
	msg := "From: Cron <cron@web1.example.com>\r\nTo: ops@db2.example.com\r\nCc: root@web1.example.com\r\nSubject: x\r\n\r\nfrom cron@web1.example.com\r\n"
	wantHead := "From: Cron <cron@example.com>\r\nTo: ops@example.com\r\nCc: root@web1.example.com\r\n"
	for _, mode := range []string{"--as-server", "--as-proxy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{})
			cfg := writeConfig(t, "[rewrite]\nmasquerade_domains = [\"example.com\"]\nmasquerade_exceptions = [\"root\"]\n")
			args := []string{mode, "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1"}
			if mode == "--as-proxy" {
				args = []string{mode, up.Addr()}
			}
			r := startRelay(t, "127.0.0.1", append(args, "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)...)
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO web1.example.com")
			if _, err := c.send("cron@web1.example.com", []string{"ops@db2.example.com"}, msg); err != nil {
				t.Fatal(err)
			}
			c.cmd("QUIT")
			c.Close()
			tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
			if tx.MailFrom != "cron@example.com" || len(tx.Rcpts) != 1 || tx.Rcpts[0].Addr != "ops@db2.example.com" {
				t.Errorf("envelope %q -> %+v; want cron@example.com -> ops@db2.example.com", tx.MailFrom, tx.Rcpts)
			}
			if data := string(tx.Data); !strings.Contains(data, wantHead) || !strings.HasSuffix(data, "\r\n\r\nfrom cron@web1.example.com\r\n") {
				t.Errorf("message upstream:\n%s\nwant the header fields\n%s\nand the body unchanged", data, wantHead)
			}
		})
	}
}
