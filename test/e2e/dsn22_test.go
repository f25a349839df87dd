package e2e

import (
	"fmt"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestDsn22HostileReplyBytes: an upstream refuses a recipient with a
// reply holding a Latin-1 octet, a NUL, an escape sequence and a bell.
// Postfix's smtp client censors every non-printable octet of a server's
// reply to '?' as it reads it (smtp_chat_resp: printable()), so that its
// notice is valid UTF-8 and free of control characters. The relay copied
// the octets into its notice: a text/plain; charset=utf-8 part and a
// message/global-delivery-status that are not UTF-8, with a NUL in a
// message (RFC 5322 section 2.3 forbids it).
func TestDsn22HostileReplyBytes(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 caf\xe9 \x00\x1b[2J\x07 gone"
	r, fake := opsRefusingRelay(t, refused, "DSN")
	mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net"}, message("hostile reply"))
	if !waitFor(15*time.Second, func() bool { n := txsFrom(fake, ""); return len(n) == 1 && n[0].Accepted() }) {
		t.Fatalf("the upstream did not take the notice")
	}
	data := string(txsFrom(fake, "")[0].Data)
	if !utf8.ValidString(data) {
		t.Errorf("notice is not valid UTF-8:\n%q", data)
	}
	for i, c := range []byte(data) {
		if c < ' ' && c != '\r' && c != '\n' && c != '\t' || c == 0x7f {
			t.Errorf("notice holds control octet %#02x at %d:\n%q", c, i, data)
			break
		}
	}
	n := parseNotice(t, data)
	if len(n.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups; want 1", len(n.PerRecipient))
	}
	if got, want := dsnField(n.PerRecipient[0], "Diagnostic-Code"), "smtp; 550 5.1.1 caf? ??[2J? gone"; got != want {
		t.Errorf("Diagnostic-Code %q; want %q (non-printable octets as '?', as Postfix)", got, want)
	}
	if got := dsnField(n.PerRecipient[0], "Status"); got != "5.1.1" {
		t.Errorf("Status %q; want 5.1.1", got)
	}
}

// TestDsn22DSNAcrossRestart: the client's DSN parameters survive the spool
// and a restart, and a message whose recipients end differently is
// reported per recipient, each once. The upstream offers no DSN and defers
// every recipient at first; the relay is stopped and started again; then
// the upstream takes ok@ (NOTIFY=SUCCESS: a "relayed" notice, as Postfix
// sends one), refuses bad@ (NOTIFY=FAILURE: a failure notice returning the
// headers, RET=HDRS) and defers soft@ once more before taking it. Each
// notice carries the ENVID and the recipient's ORCPT, decoded; no
// recipient that was taken is sent the message again.
func TestDsn22DSNAcrossRestart(t *testing.T) {
	t.Parallel()
	const later = "451 4.3.0 try again later"
	fake := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: later}})
	cfg := "[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n"
	r := opsRelay(t, fake.Addr(), cfg, "--poll", "1")
	_, final := opsSend(t, r.addr(), "client.e2e.test", "<a@x.example> RET=HDRS ENVID=env+2B22",
		[]string{"<ok@example.net> NOTIFY=SUCCESS ORCPT=rfc822;Ok+2BTag@Example.NET",
			"<bad@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;Bad@Example.NET",
			"<soft@example.net>"},
		"From: <a@x.example>\nTo: <ok@example.net>\nSubject: across a restart\n\nBODY-NOT-RETURNED\n")
	id := queuedID(t, final)
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<soft@example.net>" && e.Get("result") == "deferred"
	})
	r.stop(15 * time.Second)

	fake.Update(func(s *harness.Script) {
		s.RcptFor = map[string]harness.Response{
			"ok@example.net":  {Reply: "250 2.1.5 ok"},
			"bad@example.net": {Reply: "550 5.1.1 <bad@example.net>: no such user"},
		}
	})
	r.restart()
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<bad@example.net>" && e.Get("result") == "bounced"
	})
	fake.Update(func(s *harness.Script) { s.Rcpt = harness.Response{} })
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<soft@example.net>" && e.Get("result") == "sent"
	})
	if !waitFor(10*time.Second, func() bool { return len(acceptedTx(fake)) >= 4 }) {
		t.Fatalf("upstream took %d messages; want 4 (ok@, soft@, two notices)", len(acceptedTx(fake)))
	}
	time.Sleep(2 * time.Second) // room for a wrong extra attempt or notice

	got := map[string]int{}
	for _, tx := range txsFrom(fake, "a@x.example") {
		for _, to := range tx.To() {
			got[to]++
		}
		for _, rc := range tx.Rcpts {
			if rc.Params != "" {
				t.Errorf("upstream without DSN got RCPT parameters %q", rc.Params)
			}
		}
	}
	if got["ok@example.net"] != 1 || got["soft@example.net"] != 1 || got["bad@example.net"] != 0 {
		t.Errorf("recipients taken by the upstream: %v; want ok@ and soft@ once each", got)
	}
	var notices []harness.Transaction
	for _, tx := range txsFrom(fake, "") {
		if tx.Accepted() {
			notices = append(notices, tx)
		}
	}
	kinds := map[string]dsnNotice{}
	for _, tx := range notices {
		n := parseNotice(t, string(tx.Data))
		kinds[n.Header.Get("Subject")] = n
	}
	if len(notices) != 2 || len(kinds) != 2 {
		t.Fatalf("%d notices %v; want a relayed and a failure notice", len(notices), slices.Collect(maps.Keys(kinds)))
	}
	for subject, want := range map[string][4]string{
		"Successful Mail Delivery Report":     {"rfc822; ok@example.net", "relayed", "rfc822;Ok+Tag@Example.NET", "text/rfc822-headers"},
		"Undelivered Mail Returned to Sender": {"rfc822; bad@example.net", "failed", "rfc822;Bad@Example.NET", "text/rfc822-headers"},
	} {
		n, ok := kinds[subject]
		if !ok {
			t.Errorf("no notice %q", subject)
			continue
		}
		if got := dsnField(n.PerMessage, "Original-Envelope-Id"); got != "env+22" {
			t.Errorf("%s: Original-Envelope-Id %q; want env+22", subject, got)
		}
		if len(n.PerRecipient) != 1 {
			t.Errorf("%s: %d recipient groups; want 1\n%s", subject, len(n.PerRecipient), n.Bodies[1])
			continue
		}
		g := n.PerRecipient[0]
		if dsnField(g, "Final-Recipient") != want[0] || dsnField(g, "Action") != want[1] ||
			!strings.EqualFold(dsnField(g, "Original-Recipient"), want[2]) || !strings.HasSuffix(dsnField(g, "Original-Recipient"), want[2][6:]) {
			t.Errorf("%s: delivery status\n%s\nwant Final-Recipient %q, Action %q, Original-Recipient %q", subject, n.Bodies[1], want[0], want[1], want[2])
		}
		if len(n.Types) != 3 || n.Types[2] != want[3] || strings.Contains(n.Bodies[2], "BODY-NOT-RETURNED") {
			t.Errorf("%s: parts %q; want the original's headers only (%s)", subject, n.Types, want[3])
		}
	}
}

// TestDsn22UnroutableSenderDomain: the sender's own domain cannot be
// routed (transport_maps sends it to error:, as an administrator does for
// a domain known to be dead). The failure notice for a refused recipient
// goes through the same routing and fails there, locally; it then goes to
// the postmaster as a double bounce, from double-bounce@, through the
// smarthost, reporting the sender's address and the transport's error.
// Nothing is sent to the dead domain and no notice is made about the
// notice.
func TestDsn22UnroutableSenderDomain(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 <bad@example.net>: no such user"
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"bad@example.net": {Reply: refused}},
	})
	cfg := "[routing]\ntransport_maps = [\"inline:{ { dead.example = error:5.1.2 sender domain is dead } }\"]\n"
	r := opsRelay(t, fake.Addr(), cfg, "--forward-on-disconnect")
	id := queuedID(t, mustSend(t, r.addr(), "alice@dead.example", []string{"bad@example.net"}, message("dead sender")).Final)
	var db harness.Transaction
	if !waitFor(15*time.Second, func() bool {
		for _, tx := range txsFrom(fake, "double-bounce@relay.test") {
			if tx.Accepted() {
				db = tx
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no double bounce reached the smarthost; stderr:\n%s", r.stderr())
	}
	if !slices.Equal(db.To(), []string{"postmaster@relay.test"}) {
		t.Errorf("double bounce to %q; want postmaster@relay.test", db.To())
	}
	n := parseNotice(t, string(db.Data))
	if len(n.PerRecipient) != 1 {
		t.Fatalf("double bounce has %d recipient groups; want 1:\n%s", len(n.PerRecipient), n.Bodies[1])
	}
	g := n.PerRecipient[0]
	for name, want := range map[string]string{
		"Final-Recipient": "rfc822; alice@dead.example",
		"Action":          "failed",
		"Status":          "5.1.2",
	} {
		if got := dsnField(g, name); got != want {
			t.Errorf("double bounce %s %q; want %q\n%s", name, got, want, n.Bodies[1])
		}
	}
	if g.Has("Remote-MTA") || !strings.Contains(dsnField(g, "Diagnostic-Code"), "sender domain is dead") {
		t.Errorf("double bounce blames an upstream or loses the reason:\n%s", n.Bodies[1])
	}
	if n.Header.Get("To") != "postmaster@relay.test" {
		t.Errorf("double bounce To: %q; want postmaster@relay.test", n.Header.Get("To"))
	}
	time.Sleep(time.Second)
	for _, tx := range fake.Transactions() {
		for _, rc := range tx.Rcpts {
			if strings.HasSuffix(rc.Addr, "@dead.example") {
				t.Errorf("the smarthost was given %s (a recipient in the dead domain)", rc.Addr)
			}
		}
	}
	if got := len(txsFrom(fake, "double-bounce@relay.test")); got != 1 {
		t.Errorf("%d double bounces; want 1", got)
	}
	if ns := opsNotices(r, id); len(ns) != 1 {
		t.Errorf("%d notices about %s; want 1", len(ns), id)
	}
}

// TestDsn22HugeReplyNotice: an upstream refuses a recipient with a reply
// of 100 lines of 2,000 octets, the most the relay reads. The envelope
// keeps 2,048 octets of a reply, as Postfix's smtp client keeps at most
// line_length_limit of a multi-line one; the notice made at once from the
// attempt's reply carried all 200,000 octets twice (text and
// Diagnostic-Code), for every recipient so refused, though a notice made
// after a restart would carry 2,048.
func TestDsn22HugeReplyNotice(t *testing.T) {
	t.Parallel()
	r, fake := opsRefusingRelay(t, hugeReply("550", "5.1.1"), "DSN")
	mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net"}, message("huge reply"))
	if !waitFor(15*time.Second, func() bool { n := txsFrom(fake, ""); return len(n) == 1 && n[0].Accepted() }) {
		t.Fatalf("the upstream did not take the notice")
	}
	data := string(txsFrom(fake, "")[0].Data)
	n := parseNotice(t, data)
	if len(n.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups; want 1", len(n.PerRecipient))
	}
	diag := dsnField(n.PerRecipient[0], "Diagnostic-Code")
	if !strings.HasPrefix(diag, "smtp; 550-5.1.1 aaa") || len(diag) > 2200 {
		t.Errorf("Diagnostic-Code of %d octets starting %.40q; want the reply's first 2,048 octets at most", len(diag), diag)
	}
	if len(data) > 12000 {
		t.Errorf("notice of %d octets for one recipient and a short message; want the reply kept to 2,048 octets", len(data))
	}
}

// TestDsn22ProxyHugeRelayedNotice: in proxy mode, an upstream without DSN
// takes a message for a recipient that asked for NOTIFY=SUCCESS and says
// so in 100 lines of 2,000 octets. The "relayed" notice carried the whole
// reply twice, as store and forward's did before its replies were
// clipped; it keeps the reply's first 2,048 octets, as the envelope and
// Postfix's smtp client do.
func TestDsn22ProxyHugeRelayedNotice(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "8BITMIME"},
		EndOfData: harness.Response{Reply: hugeReply("250", "2.0.0")}})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1",
		"--spool-dir", t.TempDir(), "--domain", "relay.e2e.test")
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net> NOTIFY=SUCCESS")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250", "Subject: relayed\r\n\r\nthe text\r\n.")
	mustCmd(t, c, "221", "QUIT")
	txs := up.WaitTransactions(t, 2, 15*time.Second)
	n := txs[1]
	if n.MailFrom != "" {
		t.Fatalf("second transaction from <%s>; want the notice from <>", n.MailFrom)
	}
	dsn := parseNotice(t, string(n.Data))
	if len(dsn.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups; want 1", len(dsn.PerRecipient))
	}
	if diag := dsnField(dsn.PerRecipient[0], "Diagnostic-Code"); !strings.HasPrefix(diag, "smtp; 250-2.0.0 aaa") || len(diag) > 2200 {
		t.Errorf("Diagnostic-Code of %d octets starting %.40q; want the reply's first 2,048 octets at most", len(diag), diag)
	}
	if len(n.Data) > 12000 {
		t.Errorf("relayed notice of %d octets; want the reply kept to 2,048 octets", len(n.Data))
	}
}

// hugeReply is a reply of 100 lines of 2,000 octets, the most the relay
// reads of one.
func hugeReply(code, enhanced string) string {
	var lines []string
	for i := range 100 {
		sep := "-"
		if i == 99 {
			sep = " "
		}
		lines = append(lines, code+sep+enhanced+" "+strings.Repeat(string(rune('a'+i%26)), 1994))
	}
	return strings.Join(lines, "\r\n")
}

// TestDsn22NoticeBySenderRelayhost: a notice is mail from the null sender
// and is routed as such: sender_dependent_relayhost_maps' "<>" entry
// (Postfix's empty_address_relayhost_maps_lookup_key) sends it to its own
// smarthost, while the message it is about went to the relayhost.
func TestDsn22NoticeBySenderRelayhost(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 <bad@example.net>: no such user"
	main := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"bad@example.net": {Reply: refused}},
	})
	bounces := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	hop := "[" + strings.Replace(bounces.Addr(), ":", "]:", 1)
	sdrh := writeFile(t, dir, "sender_relay", "<> "+hop+"\n", 0o644)
	r := opsRelay(t, main.Addr(), "[routing]\nsender_dependent_relayhost_maps = [\"hash:"+sdrh+"\"]\n", "--forward-on-disconnect")
	mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net", "good@example.net"}, message("routed notice"))
	txs := bounces.WaitTransactions(t, 1, 15*time.Second)
	if txs[0].MailFrom != "" || !slices.Equal(txs[0].To(), []string{"alice@example.org"}) || !txs[0].Accepted() {
		t.Errorf("bounce smarthost got from <%s> to %v; want the notice from <> to alice@example.org", txs[0].MailFrom, txs[0].To())
	}
	time.Sleep(time.Second)
	for _, tx := range main.Transactions() {
		if tx.MailFrom == "" {
			t.Errorf("the relayhost was given the notice too: %v", tx.To())
		}
	}
	if got := txsFrom(main, "alice@example.org"); len(got) != 1 || !slices.Equal(got[0].To(), []string{"good@example.net"}) {
		t.Errorf("relayhost transactions from alice: %d; want one, delivering good@", len(got))
	}
}

// TestDsn22NXDomainSender: the sender's domain does not exist in DNS and
// the notice goes by MX, as default_transport sends it: the lookup's
// NXDOMAIN fails it at once (5.1.2, the relay's own account, no
// Remote-MTA), and the postmaster gets one double bounce, routed by
// transport_maps to the smarthost. No notice is made about the notice.
func TestDsn22NXDomainSender(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 <bad@example.net>: no such user"
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"bad@example.net": {Reply: refused}},
	})
	d := harness.StartDNS(t, "example.org. MX 10 mx.example.org.\n")
	hop := "relay:[" + strings.Replace(fake.Addr(), ":", "]:", 1)
	cfg := fmt.Sprintf("[routing]\ndefault_transport = \"smtp\"\ndns_server = %q\n"+
		"transport_maps = [\"inline:{ example.net=%s, relay.test=%s }\"]\n", d.Addr(), hop, hop)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--interface", "127.0.0.1",
		"--domain", "relay.test", "--spool-dir", t.TempDir(), "--config", opsConfig(t, cfg))
	id := queuedID(t, mustSend(t, r.addr(), "alice@nx.example", []string{"bad@example.net"}, message("nx sender")).Final)
	var db harness.Transaction
	if !waitFor(20*time.Second, func() bool {
		for _, tx := range txsFrom(fake, "double-bounce@relay.test") {
			if tx.Accepted() {
				db = tx
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no double bounce reached the smarthost; stderr:\n%s", r.stderr())
	}
	n := parseNotice(t, string(db.Data))
	if len(n.PerRecipient) != 1 {
		t.Fatalf("double bounce has %d recipient groups; want 1", len(n.PerRecipient))
	}
	g := n.PerRecipient[0]
	if dsnField(g, "Final-Recipient") != "rfc822; alice@nx.example" || dsnField(g, "Action") != "failed" ||
		!strings.HasPrefix(dsnField(g, "Status"), "5.") || g.Has("Remote-MTA") {
		t.Errorf("double bounce's delivery status:\n%s", n.Bodies[1])
	}
	time.Sleep(time.Second)
	if got := len(txsFrom(fake, "double-bounce@relay.test")); got != 1 {
		t.Errorf("%d double bounces; want 1", got)
	}
	if ns := opsNotices(r, id); len(ns) != 1 {
		t.Errorf("%d notices about %s; want 1", len(ns), id)
	}
}

// TestDsn22AsClientSendsItsNotices: "relaykeeper --as-client" forwards
// what is spooled and exits. A recipient it finds refused gets the sender
// a failure notice, which the run queued and left in the spool until a
// next run, which a job run once never has. The run now sends the
// notices it queued before it exits.
func TestDsn22AsClientSendsItsNotices(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"bad@example.net": {Reply: "550 5.1.1 <bad@example.net>: no such user"}},
	})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--interface", "127.0.0.1",
		"--domain", "relay.test", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net", "good@example.net"}, message("as client")).Final)
	r.stop(10 * time.Second)
	if n := len(fake.Transactions()); n != 0 {
		t.Fatalf("the server forwarded %d transactions; want none before --as-client", n)
	}
	out, errOut, code := opsCmd(t, "", "--as-client", fake.Addr(), "--spool-dir", spool, "--domain", "relay.test")
	if code != 1 {
		t.Errorf("--as-client exit %d; want 1 (a recipient failed)\n%s%s", code, out, errOut)
	}
	var notice []harness.Transaction
	for _, tx := range txsFrom(fake, "") {
		if tx.Accepted() {
			notice = append(notice, tx)
		}
	}
	if len(notice) != 1 || !slices.Equal(notice[0].To(), []string{"alice@example.org"}) {
		t.Fatalf("notices sent by the run: %d; want one to alice@example.org\n%s%s", len(notice), out, errOut)
	}
	if files := opsSpool(t, spool); len(files) != 1 || !slices.Equal(files[id], []string{"content", "envelope.bad"}) {
		t.Errorf("spool after the run: %v; want only %s, failed", files, id)
	}
}

// TestDsn22QueueSelectsNotices: with a notice waiting (its sender's
// server defers it), "queue list --sender '<>'" lists it and not the
// failed message it is about, and "queue delete --match '<>'" removes it
// alone, as a Postfix administrator clears the queued bounces.
func TestDsn22QueueSelectsNotices(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{
			"bad@example.net":   {Reply: "550 5.1.1 <bad@example.net>: no such user"},
			"alice@example.org": {Reply: "451 4.2.0 mailbox busy"},
		},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net"}, message("queued notice")).Final)
	nid := r.waitEvent("notice", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == id }).Get("id")
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == nid && e.Get("result") == "deferred" })

	out, errOut, code := opsCmd(t, "", "queue", "list", "--sender", "<>", "--spool-dir", r.spool)
	if code != 0 || !strings.Contains(out, nid) || strings.Contains(out, id) {
		t.Errorf("queue list --sender '<>' (exit %d): want %s only\n%s%s", code, nid, out, errOut)
	}
	out, errOut, code = opsCmd(t, "", "queue", "delete", "--match", "<>", "--spool-dir", r.spool)
	if code != 0 || !strings.Contains(out, nid+": deleted") || strings.Contains(out, id) {
		t.Errorf("queue delete --match '<>' (exit %d): want %s deleted, nothing else\n%s%s", code, nid, out, errOut)
	}
	if f := opsSpool(t, r.spool); len(f) != 1 || f[id] == nil {
		t.Errorf("spool after the delete: %v; want only %s", f, id)
	}
}
