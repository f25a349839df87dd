package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOpsHeaderChecks runs header_checks and body_checks end to end, from
// a configuration file naming pcre: tables. The seed guide's table
// (internal/headercheck/testdata/header_checks, as the guide writes it)
// rewrites the Received header relaykeeper adds for a client that says
// EHLO sso-api-01, so that the host and its address never reach the
// upstream, and drops headers mentioning localhost. Rules added after it:
// REJECT (the client hears 550 5.7.1 and its text after DATA; nothing is
// queued), HOLD (accepted, kept held, never delivered), DISCARD (250,
// nothing kept), and a body_checks REJECT.
func TestOpsHeaderChecks(t *testing.T) {
	t.Parallel()
	seed, err := os.ReadFile(filepath.Join("..", "..", "internal", "headercheck", "testdata", "header_checks"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hc := writeFile(t, dir, "header_checks", string(seed)+
		"/^Subject: .*viagra/ REJECT no spam here\n"+
		"/^Subject: .*hold me/ HOLD held for review\n"+
		"/^Subject: .*discard me/ DISCARD dropped\n", 0o644)
	bc := writeFile(t, dir, "body_checks", "/^forbidden body line/ REJECT body says no\n", 0o644)
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := opsRelay(t, sink.Addr(), "[policy]\nheader_checks = \"pcre:"+hc+"\"\nbody_checks = \"pcre:"+bc+"\"\n",
		"--forward-on-disconnect")
	msg := func(subject, body string) string {
		return "From: <sso@zombig.name>\nTo: <bob@example.net>\nSubject: " + subject +
			"\nX-Trace: submitted via localhost\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@zombig.name>\n\n" + body + "\n"
	}
	to := []string{"<bob@example.net>"}

	// HOLD first: once the next message has reached the sink, the held
	// one has had every chance to go too.
	_, final := opsSend(t, r.addr(), "client.e2e.test", "<sso@zombig.name>", to, msg("please hold me", "Held."))
	held := queuedID(t, final)
	if f := opsSpool(t, r.spool)[held]; !slices.Equal(f, []string{"content", "envelope.held"}) {
		t.Errorf("HOLD: %s has %q; want content, envelope.held", held, f)
	}

	// The seed example.
	_, final = opsSend(t, r.addr(), "sso-api-01", "<sso@zombig.name>", to, msg("Password recovery", "Your code is 1234."))
	id := queuedID(t, final)
	sink.WaitCount(t, 1, 10*time.Second)
	got := sink.Messages()[0]
	lines := strings.Split(got.Data, "\n")
	if len(lines) < 5 || lines[0] != "Received: from login.zombig.name (unknown [unknown]) " ||
		lines[1] != "\tby relay.test (relaykeeper) with ESMTP id "+id || lines[2] != "\tfor <bob@example.net>;" ||
		!strings.HasPrefix(lines[3], "\t") || lines[4] != "From: <sso@zombig.name>" {
		t.Errorf("sink message does not start with the rewritten Received header of %s:\n%s", id, head(got.Data))
	}
	for _, s := range []string{"sso-api-01", "127.0.0.1", "localhost", "X-Trace"} {
		if strings.Contains(got.Data, s) {
			t.Errorf("sink message contains %q:\n%s", s, head(got.Data))
		}
	}
	if !strings.Contains(got.Data, "\nSubject: Password recovery\n") || !strings.HasSuffix(got.Data, "\n\nYour code is 1234.\n") {
		t.Errorf("sink message lost its Subject or body:\n%s", got.Data)
	}

	// REJECT in header_checks and in body_checks: the reply to the final
	// dot, and nothing queued.
	before := opsSpool(t, r.spool)
	for _, c := range []struct{ subject, body, want, rule, match string }{
		{"cheap VIAGRA now", "Buy.", "550 5.7.1 no spam here", "header_checks", "header Subject: cheap VIAGRA now"},
		{"harmless", "first line\nforbidden body line here\nlast line", "550 5.7.1 body says no", "body_checks", "body forbidden body line here"},
	} {
		_, final := opsSend(t, r.addr(), "client.e2e.test", "<sso@zombig.name>", to, msg(c.subject, c.body))
		if final.String() != c.want {
			t.Errorf("%q: final reply %q; want %q", c.subject, final, c.want)
		}
		var rej *maillog.Entry
		waitFor(5*time.Second, func() bool {
			for _, e := range r.events("reject") {
				if e.Get("stage") == "data" && e.Get("reply") == c.want {
					rej = e
				}
			}
			return rej != nil
		})
		if rej == nil {
			t.Errorf("no mail-log reject stage=data reply=%q", c.want)
		} else if rej.Get("match") != c.match || rej.Get("rule") != c.rule {
			t.Errorf("reject line for %q: rule=%s match=%q; want rule=%s match=%q", c.want, rej.Get("rule"), rej.Get("match"), c.rule, c.match)
		}
	}

	// DISCARD: 250 with an id that never exists.
	_, final = opsSend(t, r.addr(), "client.e2e.test", "<sso@zombig.name>", to, msg("discard me please", "Gone."))
	dropped := queuedID(t, final)
	// The reason names the match and the action's text, as Postfix logs it.
	if e := r.waitEvent("discard", 5*time.Second, nil); e.Get("id") != dropped || e.Get("from") != "<sso@zombig.name>" ||
		e.Get("reason") != "header Subject: discard me please: dropped" {
		t.Errorf("discard line %v; want id=%s from=<sso@zombig.name> reason=header Subject: discard me please: dropped", e.Fields, dropped)
	}
	if after := opsSpool(t, r.spool); len(after) != len(before) || after[dropped] != nil {
		t.Errorf("spool after REJECT, REJECT and DISCARD: %v; want as before: %v", after, before)
	}
	for _, e := range r.events("accept") {
		if e.Get("id") == dropped {
			t.Errorf("discarded message %s has an accept line", dropped)
		}
	}

	// Nothing but the seed example ever reached the sink; the held
	// message is still held.
	time.Sleep(time.Second)
	if n := sink.Count(); n != 1 {
		t.Errorf("sink has %d messages; want 1", n)
	}
	if f := opsSpool(t, r.spool); len(f) != 1 || !slices.Equal(f[held], []string{"content", "envelope.held"}) {
		t.Errorf("spool %v; want only %s, held", f, held)
	}
	if h := r.events("hold"); len(h) != 1 || h[0].Get("id") != held || h[0].Get("reason") != "header Subject: please hold me: held for review" {
		t.Errorf("hold lines %v; want one for %s, reason=header Subject: please hold me: held for review", h, held)
	}
}
