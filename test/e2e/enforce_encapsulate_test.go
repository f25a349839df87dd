package e2e

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// attachedOriginal returns the message/rfc822 part of an encapsulated copy,
// byte for byte, and the number of such parts.
func attachedOriginal(t *testing.T, data []byte) ([]byte, int) {
	t.Helper()
	_, ps, err := mime.ParseMediaType(header(data, "Content-Type"))
	if err != nil || ps["boundary"] == "" {
		t.Fatalf("copy's Content-Type %q: %v", header(data, "Content-Type"), err)
	}
	_, body, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	mr := multipart.NewReader(bytes.NewReader(body), ps["boundary"])
	var orig []byte
	n := 0
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("copy's MIME structure: %v", err)
		}
		if p.Header.Get("Content-Type") == "message/rfc822" {
			n++
			if orig, err = io.ReadAll(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return orig, n
}

// checkCopy checks an encapsulated copy of the refused transaction: from the
// relay's postmaster to rcpt, marked, Reply-To the author, and the original
// attached exactly as the relay had sent it.
func checkCopy(t *testing.T, cp, refused hTx, rcpt, author, subject string) {
	t.Helper()
	if cp.MailFrom != relayAddress || !slices.Equal(cp.To(), []string{rcpt}) {
		t.Errorf("copy's envelope: from <%s> to %q; want <%s> to [%s]", cp.MailFrom, cp.To(), relayAddress, rcpt)
	}
	want := map[string]string{"From": relayAddress, "To": rcpt, "Reply-To": author, "X-Relaykeeper-Encapsulated": "1",
		"Auto-Submitted": "auto-generated", "Subject": "Fwd: " + subject, "MIME-Version": "1.0"}
	for k, v := range want {
		if got := header(cp.Data, k); got != v {
			t.Errorf("copy's %s: %q; want %q", k, got, v)
		}
	}
	orig, n := attachedOriginal(t, cp.Data)
	if n != 1 || !bytes.Equal(orig, refused.Data) {
		t.Errorf("copy has %d message/rfc822 parts; the original attached (%d bytes):\n%q\nwant exactly what Gmail refused (%d bytes):\n%q",
			n, len(orig), orig, len(refused.Data), refused.Data)
	}
}

// TestEnforceEncapsulate: a DMARC refusal (5.7.26) makes a new message from
// postmaster@relay.test to the original recipient, carrying the original
// byte for byte; the original is not bounced. In proxy mode the client
// hears 250, and a copy that Gmail refuses again is reported, not
// encapsulated a second time.
func TestEnforceEncapsulate(t *testing.T) {
	t.Parallel()
	const author = `"Alice Example" <alice@dmarc.example>`
	t.Run("store-and-forward", func(t *testing.T) {
		t.Parallel()
		gmail := newFakeGmail(t)
		gmail.answer("bob@gmail.test", stData, gmailDMARC)
		r := startEnforcer(t, gmail.Addr(), enforceOpts{})
		tx, err := sendFrom(r.addr(), "127.0.0.1", "alice@dmarc.example", []string{"bob@gmail.test"}, gmailMessage("alice@dmarc.example", "dmarc original"))
		if err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v %+v", err, tx)
		}
		id := queuedID(t, tx.Final)
		enc := r.waitEvent("encapsulate", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == id })
		copyID := enc.Get("id")
		if copyID == "" || copyID == id || enc.Get("to") != "<bob@gmail.test>" || enc.Get("rule") != "gmail-dmarc" || enc.Get("client") != "127.0.0.1" {
			t.Errorf("encapsulate line %v; want a new id, to=<bob@gmail.test> rule=gmail-dmarc client=127.0.0.1", enc.Fields)
		}
		if !waitFor(10*time.Second, func() bool { return len(gmail.copiesTo("bob@gmail.test")) == 1 && msgState(r.spool, id) == "gone" }) {
			t.Fatalf("after 10s: %d copies, original %s; want one copy and the original gone", len(gmail.copiesTo("bob@gmail.test")), msgState(r.spool, id))
		}
		refused := gmail.txs(func(tx hTx) bool { return tx.MailFrom == "alice@dmarc.example" })
		if len(refused) != 1 || !strings.HasPrefix(refused[0].Reply, "550-5.7.26 ") {
			t.Fatalf("Gmail's transactions from alice: %d; want one, refused with 5.7.26", len(refused))
		}
		checkCopy(t, gmail.copiesTo("bob@gmail.test")[0], refused[0], "bob@gmail.test", author, "dmarc original")
		if e := r.waitEvent("delivery", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == copyID }); e.Get("result") != "sent" {
			t.Errorf("delivery of the copy: %v; want sent", e.Fields)
		}
		time.Sleep(300 * time.Millisecond)
		if bounces := gmail.txs(func(tx hTx) bool { return tx.MailFrom == "" }); len(bounces) != 0 {
			t.Errorf("Gmail got %d bounces; want none: the original was forwarded encapsulated", len(bounces))
		}
		if es := r.events("notice"); len(es) != 0 {
			t.Errorf("notices %v; want none", fieldsOf(es))
		}
		for _, e := range deliveries(r.events("delivery"), "bob@gmail.test", "") {
			t.Logf("mail log: delivery id=%s result=%s (encapsulated after the refusal)", e.Get("id"), e.Get("result"))
		}
	})
	t.Run("proxy", func(t *testing.T) {
		t.Parallel()
		gmail := newFakeGmail(t)
		gmail.answer("carol@gmail.test", stData, gmailDMARC)
		gmail.answer("dave@gmail.test", stData, gmailDMARC)
		gmail.refuseCopy("dave@gmail.test", gmailDMARC)
		r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true})

		tx, err := sendFrom(r.addr(), "127.0.0.1", "alice@dmarc.example", []string{"carol@gmail.test"}, gmailMessage("alice@dmarc.example", "via proxy"))
		if want := (reply{encapsulatedHeard("5.7.26")}); err != nil || !slices.Equal(tx.Final, want) {
			t.Errorf("client heard %q (%v); want %q", tx.Final, err, want)
		}
		if !waitFor(10*time.Second, func() bool { return len(gmail.copiesTo("carol@gmail.test")) == 1 }) {
			t.Fatalf("no copy to carol after 10s")
		}
		refused := gmail.txs(func(tx hTx) bool {
			return tx.MailFrom == "alice@dmarc.example" && slices.Equal(tx.To(), []string{"carol@gmail.test"})
		})
		if len(refused) != 1 {
			t.Fatalf("%d transactions to carol from alice; want 1", len(refused))
		}
		checkCopy(t, gmail.copiesTo("carol@gmail.test")[0], refused[0], "carol@gmail.test", author, "via proxy")

		// Gmail refuses the copy too: reported, not encapsulated again.
		tx, err = sendFrom(r.addr(), "127.0.0.1", "alice@dmarc.example", []string{"dave@gmail.test"}, gmailMessage("alice@dmarc.example", "refused twice"))
		if want := (reply{encapsulatedHeard("5.7.26")}); err != nil || !slices.Equal(tx.Final, want) {
			t.Errorf("client heard %q (%v); want %q", tx.Final, err, want)
		}
		enc := r.waitEvent("encapsulate", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<dave@gmail.test>" })
		copyID := enc.Get("id")
		rep := r.waitEvent("report", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == copyID })
		const why = "not encapsulated: the message is an encapsulated copy already: never encapsulated twice"
		if rep.Get("why") != why || rep.Get("rule") != "gmail-dmarc" || rep.Get("to") != "<dave@gmail.test>" {
			t.Errorf("report line %v; want why=%q rule=gmail-dmarc to=<dave@gmail.test>", rep.Fields, why)
		}
		waitFor(5*time.Second, func() bool { return msgState(r.spool, copyID) == "failed" })
		time.Sleep(1500 * time.Millisecond) // time for a second copy, if any
		if es := eventsWith(r, "encapsulate", "to", "<dave@gmail.test>"); len(es) != 1 {
			t.Errorf("encapsulate lines to dave: %v; want exactly one", fieldsOf(es))
		}
		toDave := gmail.txs(func(tx hTx) bool { return slices.Contains(tx.To(), "dave@gmail.test") })
		if len(toDave) != 2 || toDave[1].MailFrom != relayAddress {
			t.Errorf("Gmail saw %d transactions to dave; want 2: the original and one copy", len(toDave))
		}
		if s := msgState(r.spool, copyID); s != "failed" {
			t.Errorf("the refused copy %s is %s; want failed", copyID, s)
		}
	})
}

// TestEnforceDisabled: with --no-enforce a DMARC refusal just bounces, spam
// bans nobody, a bad domain is not blocked, nothing is encapsulated and no
// enforcement file is written; a proxy passes Gmail's reply on unchanged.
func TestEnforceDisabled(t *testing.T) {
	t.Parallel()
	t.Run("store-and-forward", func(t *testing.T) {
		t.Parallel()
		gmail := newFakeGmail(t)
		gmail.answer("bob@gmail.test", stData, gmailDMARC)
		gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
		gmail.answer("dom@gmail.test", stData, gmailDomainReputation)
		r := startEnforcer(t, gmail.Addr(), enforceOpts{extra: []string{"--no-enforce"}})
		var ids []string
		for _, to := range []string{"bob@gmail.test", "spam@gmail.test", "dom@gmail.test"} {
			tx, err := sendFrom(r.addr(), "127.0.0.5", "alice@bad.example", []string{to}, gmailMessage("alice@bad.example", "no enforce "+to))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("send to %s: %v %+v", to, err, tx)
			}
			ids = append(ids, queuedID(t, tx.Final))
		}
		if !waitFor(10*time.Second, func() bool {
			for _, id := range ids {
				if msgState(r.spool, id) != "failed" {
					return false
				}
			}
			return len(gmail.txs(func(tx hTx) bool { return tx.MailFrom == "" && tx.Accepted() })) == 3
		}) {
			t.Fatalf("after 10s: states %s %s %s, %d bounces; want all failed and 3 bounces to alice",
				msgState(r.spool, ids[0]), msgState(r.spool, ids[1]), msgState(r.spool, ids[2]), len(gmail.txs(func(tx hTx) bool { return tx.MailFrom == "" })))
		}
		time.Sleep(500 * time.Millisecond)
		if es := enforceEvents(r, "127.0.0.5"); len(es) != 0 {
			t.Errorf("enforcement lines with --no-enforce: %v; want none", fieldsOf(es))
		}
		if n := len(gmail.txs(func(tx hTx) bool { return tx.MailFrom == relayAddress })); n != 0 {
			t.Errorf("%d encapsulated copies with --no-enforce; want 0", n)
		}
		if _, err := os.Stat(enforceFile(r, "")); !os.IsNotExist(err) {
			entries, _ := os.ReadDir(enforceFile(r, ""))
			t.Errorf("SPOOL/.enforce with --no-enforce: %v %v; want none (no sender_access, bans or welcomelist)", err, entries)
		}
		c := mustDial(t, r.addr(), "127.0.0.5")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<y@bad.example>")
	})
	t.Run("proxy", func(t *testing.T) {
		t.Parallel()
		gmail := newFakeGmail(t)
		gmail.answer("bob@gmail.test", stData, gmailDMARC)
		r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, extra: []string{"--no-enforce"}})
		tx, err := sendFrom(r.addr(), "127.0.0.1", "alice@dmarc.example", []string{"bob@gmail.test"}, gmailMessage("alice@dmarc.example", "no enforce proxy"))
		if want := replyLines(gmail.lastSent("bob@gmail.test")); err != nil || !slices.Equal(tx.Final, want) {
			t.Errorf("client heard %q (%v); want Gmail's reply unchanged, %q", tx.Final, err, want)
		}
		time.Sleep(1500 * time.Millisecond)
		if n := len(gmail.txs(func(tx hTx) bool { return tx.MailFrom == relayAddress })); n != 0 {
			t.Errorf("%d encapsulated copies with --no-enforce; want 0", n)
		}
		if es := enforceEvents(r, "127.0.0.1"); len(es) != 0 {
			t.Errorf("enforcement lines with --no-enforce: %v; want none", fieldsOf(es))
		}
		checkSpoolEmpty(t, r.spool)
	})
}
