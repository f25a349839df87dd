package e2e

import (
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// startProxy runs "relaykeeper --as-proxy UPSTREAM" with its own spool.
func startProxy(t *testing.T, upstream string) (*relay, string) {
	t.Helper()
	spool := t.TempDir()
	return startRelay(t, "127.0.0.1", "--as-proxy", upstream, "--interface", "127.0.0.1", "--spool-dir", spool), spool
}

// TestProxySink: with smtp-sink upstream, the client's reply to its final
// dot is smtp-sink's own "250 2.0.0 Ok", not the relay's "queued as", and
// the relay keeps nothing.
func TestProxySink(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	r, spool := startProxy(t, sink.Addr())
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net", "carol@example.net"}, message("proxy"))
	if want := (reply{"250 2.0.0 Ok"}); !slices.Equal(tx.Final, want) {
		t.Errorf("final reply through the proxy = %q; want smtp-sink's %q", tx.Final, want)
	}
	if n := sink.Count(); n != 1 {
		t.Fatalf("sink has %d messages right after the client's 250; want 1", n)
	}
	m := sink.Messages()[0]
	if m.From != "alice@example.org" || !slices.Equal(m.To, []string{"bob@example.net", "carol@example.net"}) || receivedID(m.Data) == "" {
		t.Errorf("sink got from %q to %q, top header %q; want alice to bob and carol with relaykeeper's Received", m.From, m.To, head(m.Data))
	}
	e := r.waitEvent("proxy", 5*time.Second, nil)
	if e.Get("result") != "sent" || e.Get("reply") != "250 2.0.0 Ok" || e.Get("relay") != sink.Addr() || e.Get("nrcpt") != "2" {
		t.Errorf("proxy line = %v; want result=sent reply=\"250 2.0.0 Ok\" relay=%s nrcpt=2", e.Fields, sink.Addr())
	}
	checkSpoolEmpty(t, spool)
}

// TestProxyRelaysUpstreamReplies: whatever the upstream answers at RCPT or
// at the final dot reaches the client as is, line for line; an upstream
// that is not there is a 451 at MAIL. The spool ends empty every time.
func TestProxyRelaysUpstreamReplies(t *testing.T) {
	t.Parallel()
	multi := "550-5.7.1 Message rejected by policy\r\n550-5.7.1 see https://example.net/policy\r\n550 5.7.1 and do not try again"
	tests := []struct {
		name     string
		script   *harness.Script // nil: no upstream at all
		to       []string
		wantMail int
		wantRcpt []reply // a bare code ("250") matches any reply with that code
		wantEnd  reply   // nil: the transaction stops before DATA
		wantUp   int     // transactions the upstream accepted
		wantLog  map[string]string
	}{
		{
			name:     "multi-line 550 at end of data",
			script:   &harness.Script{EndOfData: harness.Response{Reply: multi}},
			to:       []string{"bob@example.net"},
			wantMail: 250,
			wantRcpt: []reply{{"250"}},
			wantEnd:  reply{"550-5.7.1 Message rejected by policy", "550-5.7.1 see https://example.net/policy", "550 5.7.1 and do not try again"},
			wantLog: map[string]string{"event": "proxy", "result": "bounced",
				"reply": "550-5.7.1 Message rejected by policy 550-5.7.1 see https://example.net/policy 550 5.7.1 and do not try again"},
		},
		{
			name: "451 at RCPT for one recipient",
			script: &harness.Script{RcptFor: map[string]harness.Response{
				"later@example.net": {Reply: "451 4.7.1 Greylisted, come back later"}}},
			to:       []string{"later@example.net", "bob@example.net"},
			wantMail: 250,
			wantRcpt: []reply{{"451 4.7.1 Greylisted, come back later"}, {"250"}},
			wantEnd:  reply{"250 2.0.0 Ok: queued as FAKE000001"},
			wantUp:   1,
			wantLog:  map[string]string{"event": "reject", "stage": "rcpt", "reply": "451 4.7.1 Greylisted, come back later", "to": "<later@example.net>"},
		},
		{
			name:     "upstream down",
			to:       []string{"bob@example.net"},
			wantMail: 451,
			wantLog:  map[string]string{"event": "reject", "stage": "mail"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			upstream := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
			var fake *harness.FakeSMTP
			if tt.script != nil {
				fake = harness.NewFakeSMTP(t, *tt.script)
				upstream = fake.Addr()
			}
			r, spool := startProxy(t, upstream)
			tx, err := sendMail(r.addr(), "alice@example.org", tt.to, message(tt.name))
			if err != nil && err != errRefused {
				t.Fatalf("send: %v", err)
			}
			if got := tx.Mail.code(); got != tt.wantMail {
				t.Errorf("reply to MAIL = %q; want code %d", tx.Mail, tt.wantMail)
			}
			if tt.wantRcpt != nil && !slices.EqualFunc(tx.Rcpt, tt.wantRcpt, matchReply) {
				t.Errorf("replies to RCPT = %q; want %q", tx.Rcpt, tt.wantRcpt)
			}
			if !slices.Equal(tx.Final, tt.wantEnd) {
				t.Errorf("reply to the final dot = %q; want %q", tx.Final, tt.wantEnd)
			}
			if fake != nil {
				var accepted []harness.Transaction
				for _, up := range fake.Transactions() {
					if up.Accepted() {
						accepted = append(accepted, up)
					}
				}
				if len(accepted) != tt.wantUp {
					t.Errorf("upstream accepted %d transactions; want %d", len(accepted), tt.wantUp)
				} else if tt.wantUp == 1 && !slices.Equal(accepted[0].To(), []string{"bob@example.net"}) {
					t.Errorf("upstream accepted the message for %q; want only [bob@example.net]", accepted[0].To())
				}
			}
			e := r.waitEvent(tt.wantLog["event"], 5*time.Second, nil)
			for k, v := range tt.wantLog {
				if k != "event" && e.Get(k) != v {
					t.Errorf("mail log %s line: %s=%q; want %q (line %v)", e.Event, k, e.Get(k), v, e.Fields)
				}
			}
			if tt.script == nil && !strings.HasPrefix(e.Get("reply"), "451 ") {
				t.Errorf("mail log reject reply = %q; want a 451", e.Get("reply"))
			}
			checkSpoolEmpty(t, spool)
		})
	}
}

// matchReply reports whether got is want, or has want's code when want is
// a bare code: the relay answers an accepted RCPT itself.
func matchReply(got, want reply) bool {
	if len(want) == 1 && len(want[0]) == 3 {
		return got.code() == want.code() && len(got) == 1
	}
	return slices.Equal(got, want)
}

// TestProxyDowngrade: through the proxy, an 8-bit MIME message declared
// BODY=8BITMIME reaches a real smtp-sink that does not offer 8BITMIME in
// 7 bits (RFC 6152 section 3), its text quoted-printable, without BODY=;
// the client hears the sink's own 250.
func TestProxyDowngrade(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{No8BitMIME: true})
	r, _ := startProxy(t, sink.Addr())
	const text = "Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln, = und mehr\r\n"
	c := mustDial(t, r.addr(), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org> BODY=8BITMIME")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250 2.0.0 Ok", "From: alice@example.org\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s.", text)
	sink.WaitCount(t, 1, 10*time.Second)
	m := sink.Messages()[0]
	data := strings.ReplaceAll(m.Data, "\n", "\r\n")
	_, body, _ := strings.Cut(data, "\r\n\r\n")
	decoded, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if strings.ContainsFunc(data, func(r rune) bool { return r >= 0x80 }) || strings.Contains(m.MailArgs, "BODY=") ||
		err != nil || string(decoded) != text || !strings.Contains(data, "Content-Transfer-Encoding: quoted-printable") {
		t.Errorf("sink got MAIL %q, data %q; want 7 bits, no BODY=, quoted-printable that decodes to %q", m.MailArgs, data, text)
	}
}

// TestClientInterface: E-MailRelay's --client-interface makes connections
// to the upstream leave from that local address, in store-and-forward and
// in proxy mode; an address that is no IP is refused at start.
func TestClientInterface(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"--as-server", "--as-proxy"} {
		up := harness.NewFakeSMTP(t, harness.Script{})
		args := []string{mode, "--forward-to", up.Addr(), "--forward-on-disconnect"}
		if mode == "--as-proxy" {
			args = []string{mode, up.Addr()}
		}
		r := startRelay(t, "127.0.0.1", append(args, "--client-interface", "127.0.0.2", "--interface", "127.0.0.1",
			"--spool-dir", t.TempDir())...)
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("from 127.0.0.2"))
		tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
		if !strings.HasPrefix(tx.Client, "127.0.0.2:") {
			t.Errorf("%s: the upstream saw the relay connect from %s; want 127.0.0.2", mode, tx.Client)
		}
	}
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-proxy", "127.0.0.1:25", "--client-interface", "eth0")
	if code == 0 || !strings.Contains(errOut, `--client-interface: "eth0" is not an IP address`) {
		t.Errorf("--client-interface eth0: exit %d, %q; want a start-time error naming the setting", code, errOut)
	}
}
