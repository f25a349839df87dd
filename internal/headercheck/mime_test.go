package headercheck

import (
	"strings"
	"testing"
)

// attachRule is the header_checks rule guides give for refusing
// attachments by name, matched by Postfix on MIME part headers through
// mime_header_checks (default $header_checks).
const attachRule = `/^Content-(Disposition|Type).*name\s*=\s*"?[^"]*\.(exe|bat|scr)"?/ REJECT attachment type not allowed` + "\n"

// TestMIMEPartHeaders: header_checks see the headers of MIME parts and of
// attached messages, as Postfix's mime_header_checks and
// nested_header_checks (both $header_checks by default) do. Before,
// relaykeeper took them for body lines: the attachment rule above let
// every .exe through.
func TestMIMEPartHeaders(t *testing.T) {
	c := openChecks(t, attachRule+"/^Subject: nested spam/ REJECT nested\n/^X-Epilogue:/ REJECT epilogue\n", "")
	for _, tt := range []struct {
		name string
		msg  string
		want Verdict
		text string
	}{
		{"attachment", crlf("Subject: hi", "Content-Type: multipart/mixed; boundary=\"b1\"", "", "preamble",
			"--b1", "Content-Type: text/plain", "", "hello", "--b1",
			"Content-Type: application/octet-stream;", "\tname=\"run.exe\"", "Content-Disposition: attachment;", " filename=\"run.exe\"", "", "TVqQAAMAAAAEAAAA",
			"--b1--", ""), Reject, "attachment type not allowed"},
		{"nested multipart", crlf("Content-Type: multipart/mixed; boundary=outer", "", "--outer",
			"Content-Type: multipart/alternative; boundary=inner", "", "--inner", "Content-Type: text/plain", "", "x",
			"--inner", "Content-Disposition: attachment; filename=a.bat", "", "y", "--inner--", "--outer--", ""), Reject, "attachment type not allowed"},
		{"attached message", crlf("Content-Type: multipart/mixed; boundary=b", "", "--b", "Content-Type: message/rfc822", "",
			"Subject: nested spam", "From: x@example.com", "", "body", "--b--", ""), Reject, "nested"},
		{"text/plain name in body", crlf("Subject: hi", "", "Content-Disposition: attachment; filename=run.exe", ""), Accept, ""},
		{"no boundary declared", crlf("Content-Type: text/plain", "", "--b1", "Content-Disposition: attachment; filename=run.exe", ""), Accept, ""},
		{"epilogue is body", crlf("Content-Type: multipart/mixed; boundary=b", "", "--b", "", "x", "--b--", "X-Epilogue: 1", ""), Accept, ""},
		{"safe attachment", crlf("Content-Type: multipart/mixed; boundary=b", "", "--b", "Content-Disposition: attachment; filename=report.pdf", "", "x", "--b--", ""), Accept, ""},
	} {
		_, res := apply(t, c, tt.msg)
		if res.Verdict != tt.want || !strings.Contains(res.Text, tt.text) {
			t.Errorf("%s: %v %q; want %v %q", tt.name, res.Verdict, res.Text, tt.want, tt.text)
		}
	}
}

// TestMIMEPartHeadersBodyChecks: a body_checks rule written for a MIME
// part header (which relaykeeper's body_checks saw before it read MIME
// structure) still matches when header_checks leave the header alone; the
// output is the input where nothing acts.
func TestMIMEPartHeadersBodyChecks(t *testing.T) {
	c := openChecks(t, "/^X-Never:/ REJECT\n", "/^Content-Disposition:.*\\.exe/ REJECT body rule\n")
	msg := crlf("Content-Type: multipart/mixed; boundary=b", "", "--b", "Content-Disposition: attachment; filename=x.exe", "Content-Type: application/octet-stream;", " name=x.exe", "", "x", "--b--", "")
	if _, res := apply(t, c, msg); res.Verdict != Reject || res.Text != "body rule" {
		t.Errorf("%v %q; want the body_checks rule to refuse it", res.Verdict, res.Text)
	}
	ok := strings.ReplaceAll(msg, "x.exe", "x.pdf")
	if out, res := apply(t, c, ok); res.Verdict != Accept || out != ok {
		t.Errorf("%v, output changed: %v", res.Verdict, out != ok)
	}
}
