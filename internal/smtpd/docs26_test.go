package smtpd

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/headercheck"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestDocs26HeaderChecksInfoStripLogged: docs/header-checks.md says INFO
// logs the match and STRIP deletes the header "and logs it"; both were
// collected in the checks' result and never written anywhere, and so was
// a $1 result that turned out to be no action (ignored, "as Postfix
// ignores them with a warning"). Each now has its line in the log.
func TestDocs26HeaderChecksInfoStripLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "header_checks")
	rules := "/^X-Strip:/ STRIP stripped it\n/^X-Info:/ INFO noted\n/^X-Act: (.*)/ $1\n"
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	hc, err := headercheck.Open("pcre:"+path, "")
	if err != nil {
		t.Fatal(err)
	}
	diag := &syncBuf{}
	ts := startServer(t, func(o *Options) {
		o.HeaderChecks = hc
		o.Log = slog.New(slog.NewTextHandler(diag, nil))
	})
	lines := dialog(t, ts.addr, "EHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"+
		"X-Strip: secret\r\nX-Info: yes\r\nX-Act: FROBNICATE\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	if countPrefix(lines, "250 2.0.0 OK: queued") != 1 {
		t.Fatalf("replies %q", lines)
	}
	if msgs := spooled(t, ts.spool); len(msgs) != 1 || strings.Contains(msgs[0], "X-Strip") {
		t.Errorf("spooled %q; want one message without X-Strip", msgs)
	}
	log := diag.String()
	for _, want := range []string{
		`msg="header_checks info"`, `info="header X-Strip: secret: stripped it"`,
		`info="header X-Info: yes: noted"`,
		`level=WARN msg="header/body check result ignored"`, `FROBNICATE`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

// TestDocs26AccessHoldDiscardTextLogged: docs/tables.md says an access
// table's "DISCARD text" and "HOLD text" accept the message and log the
// text; the mail log said reason="discard action" and reason="held at
// receipt", without the text or the table that decided.
func TestDocs26AccessHoldDiscardTextLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_access")
	if err := os.WriteFile(path, []byte("hold.example HOLD held sender\ndiscard.example DISCARD dropped sender\nbare.example HOLD\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "check_sender_access hash:" + path
	pol, err := policy.New(policy.Options{
		Sender:        []string{spec},
		Relay:         []string{"permit_mynetworks", "reject_unauth_destination"},
		MyNetworkSpec: []string{"127.0.0.0/8"},
		Tables:        policy.SetTables{Set: &table.Set{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.Policy = pol })
	for _, c := range []struct{ from, want string }{
		{"a@hold.example", `hold id=`},
		{"a@discard.example", `discard id=`},
		{"a@bare.example", `hold id=`},
	} {
		lines := dialog(t, ts.addr, "EHLO client.test\r\nMAIL FROM:<"+c.from+">\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
		if countPrefix(lines, "250 2.0.0 OK: queued") != 1 {
			t.Fatalf("%s: replies %q", c.from, lines)
		}
	}
	log := ts.log.String()
	for _, want := range []string{
		`from=<a@hold.example> reason="` + spec + `: held sender"`,
		`from=<a@discard.example> nrcpt=1 reason="` + spec + `: dropped sender"`,
		`from=<a@bare.example> reason="` + spec + `: HOLD"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("mail log lacks %s:\n%s", want, log)
		}
	}
}
