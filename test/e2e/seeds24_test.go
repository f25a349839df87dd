package e2e

// The seed documents' examples run as written (the seeds24 checker's):
// what earlier seed tests did not already cover.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSeeds24FilterDummyRefused: FILTER_README turns its simple content
// filter on with "-o content_filter=filter:dummy", where "filter" is a
// pipe(8) service whose next hop Postfix ignores. relaykeeper reaches a
// content filter (content_filter, or a FILTER action of an access table or
// header check) by SMTP at the next hop, so it took the line and sent every
// message to a host named "dummy", port 25, where it stayed deferred. It is
// refused at its line, pointing to --filter "pipe:...", which runs that
// filter; an SMTP filter as the advanced example writes it still starts.
func TestSeeds24FilterDummyRefused(t *testing.T) {
	t.Parallel()
	const why = `"filter:dummy" names a pipe(8) service (FILTER_README's simple content filter), which relaykeeper runs before accepting the message, as --filter "pipe:`
	cfg23Refused(t, cfg23Config(t, "[routing]\ncontent_filter = \"filter:dummy\"\n"), ":7: routing.content_filter: "+why)

	dir := t.TempDir()
	access := writeFile(t, dir, "client_access", "127.0.0.2 FILTER filter:dummy\n", 0o644)
	cfg23Refused(t, cfg23Config(t, "[policy]\nclient_restrictions = [\"check_client_access hash:"+access+"\"]\n"),
		":7: policy.client_restrictions: \"check_client_access hash:"+access+"\": "+access+":1: \"FILTER filter:dummy\": "+why)
	checks := writeFile(t, dir, "header_checks", "/^Subject: scan me/ FILTER filter:dummy\n", 0o644)
	cfg23Refused(t, cfg23Config(t, "[policy]\nheader_checks = \"pcre:"+checks+"\"\n"),
		":7: policy.header_checks: "+checks+":1: "+why)

	// The advanced example's SMTP filter, and Postfix's FILTER foo:bar.
	for _, body := range []string{
		"[routing]\ncontent_filter = \"scan:localhost:10025\"\n",
		"[policy]\nheader_checks = \"pcre:" + writeFile(t, dir, "foobar", "/^Subject: scan me/ FILTER foo:bar\n", 0o644) + "\"\n",
	} {
		conf := cfg23Config(t, body)
		if out, errOut, code := runBinary(t, harness.Binary(t), "", "--check", "--config", conf); code != 0 {
			t.Errorf("relaykeeper --check with %q: exit %d, %s%s; want 0", body, code, out, errOut)
		}
	}
}

// TestSeeds24WelcomelistHostAddrs: relay-enforcer's manual says its
// welcomelist "is created at startup containing local ips and all possible
// local-network ips". The one postfix-enforcer (and the relay) created held
// loopback and the private networks only, so a message that a program on
// the relay's own host sent from the host's public address, refused by
// Gmail as spam, banned that address: fail2ban then cut the host off its
// own mail ports. Each of this host's addresses outside the private
// networks is welcomelisted now: the refusal is not a ban.
func TestSeeds24WelcomelistHostAddrs(t *testing.T) {
	t.Parallel()
	var own []string
	nets, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		ipn, ok := n.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsPrivate() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		own = append(own, ipn.IP.String())
	}
	if len(own) == 0 {
		t.Log("this host has no address outside loopback and the private networks: only the file is checked")
	}
	dir := t.TempDir()
	var log strings.Builder
	for i, ip := range append(own, "203.0.113.7") {
		q := fmt.Sprintf("4A000%dABC1", i+1)
		fmt.Fprintf(&log, `Nov 22 10:00:01 mx1 postfix/smtpd[100]: %[1]s: client=unknown[%[2]s]
Nov 22 10:00:01 mx1 postfix/cleanup[101]: %[1]s: message-id=<m-%[1]s@own.example>
Nov 22 10:00:01 mx1 postfix/qmgr[102]: %[1]s: from=<app@own.example>, size=900, nrcpt=1 (queue active)
Nov 22 10:00:03 mx1 postfix/smtp[105]: %[1]s: to=<u1@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550 5.7.1 this message has been blocked. s1 - gsmtp (in reply to end of DATA command))
`, q, ip)
	}
	logFile := writeFile(t, dir, "mail.log", log.String(), 0o644)
	wl := filepath.Join(dir, "welcomelist") // not there: postfix-enforcer creates it
	out, errOut, code := runBinary(t, harness.Binary(t), "", "postfix-enforcer", "--once", "--log", logFile,
		"--state", filepath.Join(dir, "state"), "--welcomelist", wl, "--sender-access", filepath.Join(dir, "sender_access"),
		"--ban-log", filepath.Join(dir, "ban.log"), "--ban-delay", "0", "--smtp", "127.0.0.1:1")
	if code != 0 {
		t.Fatalf("postfix-enforcer: exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(wl)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range own {
		if !slices.Contains(strings.Fields(string(data)), ip) {
			t.Errorf("the created welcomelist does not list this host's address %s:\n%s", ip, data)
		}
		if strings.Contains(out, "ban client="+ip+" ") {
			t.Errorf("postfix-enforcer banned this host's own address %s:\n%s", ip, out)
		}
	}
	if !strings.Contains(out, "ban client=203.0.113.7 ") {
		t.Errorf("postfix-enforcer did not ban the stranger 203.0.113.7:\n%s%s", out, errOut)
	}
}

// TestSeeds24FilterScriptWithoutShebang: E-MailRelay's user guide gives the
// SpamAssassin --filter script that marks spam and keeps it as three lines,
// without a "#!" line. Run as written it failed with "exec format error"
// and every message was refused with 451 4.3.0; it is run by /bin/sh now,
// as execvp runs such a file, and the stored message carries SpamAssassin's
// headers.
func TestSeeds24FilterScriptWithoutShebang(t *testing.T) {
	t.Parallel()
	harness.Need(t, "spamassassin")
	dir, spool := t.TempDir(), t.TempDir()
	filter := writeFile(t, dir, "myspamfilter", "spamassassin \"$1\" > \"$1.tmp\"\nmv \"$1.tmp\" \"$1\"\nexit 0\n", 0o755)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--filter", filter, "--filter-timeout", "60")
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("marked, not refused"))
	ids := messageIDs(t, spool)
	if len(ids) != 1 {
		t.Fatalf("spool holds %d messages; want the one sent", len(ids))
	}
	data, err := os.ReadFile(filepath.Join(spool, ids[0]+".content"))
	if err != nil || !strings.Contains(string(data), "X-Spam-Status: ") || !strings.Contains(string(data), "Subject: marked, not refused") {
		t.Errorf("the stored message (%v) has no X-Spam-Status header from the filter:\n%s", err, data)
	}
}
