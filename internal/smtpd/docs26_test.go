package smtpd

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/headercheck"
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
