package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestHeaderChecksAttachments: the header_checks rule every guide gives
// for refusing attachments by name refuses a message swaks sends with an
// .exe attached, as it does behind Postfix (mime_header_checks defaults to
// $header_checks); before, MIME part headers were body lines and the
// attachment went through. A PDF still goes.
func TestHeaderChecksAttachments(t *testing.T) {
	t.Parallel()
	swaks, err := exec.LookPath("swaks")
	needFor(t, "swaks", err)
	dir := t.TempDir()
	hc := writeFile(t, dir, "header_checks",
		`/^Content-(Disposition|Type).*name\s*=\s*"?[^"]*\.(exe|bat|scr|com|pif|vbs)"?/ REJECT attachment type not allowed`+"\n", 0o644)
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := opsRelay(t, sink.Addr(), "[policy]\nheader_checks = \"pcre:"+hc+"\"\n", "--forward-on-disconnect")
	for _, tc := range []struct {
		file string
		want string
	}{
		{"setup.exe", "550 5.7.1 attachment type not allowed"},
		{"report.pdf", "250 "},
	} {
		att := writeFile(t, dir, tc.file, "MZ\x90\x00 not really a program\n", 0o644)
		out, _ := exec.Command(swaks, "--server", r.addr(), "--from", "alice@example.org", "--to", "bob@example.net",
			"--attach-type", "application/octet-stream", "--attach-name", tc.file, "--attach", "@"+att).CombinedOutput()
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: swaks saw\n%s\nwant %q", tc.file, out, tc.want)
		}
	}
}
