package headercheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// writeTable writes a table file into a fresh temporary directory and
// returns its path.
func writeTable(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openChecks opens pcre tables with the given rules; "" for none.
func openChecks(t *testing.T, header, body string) *Checks {
	t.Helper()
	var hs, bs string
	if header != "" {
		hs = "pcre:" + writeTable(t, "header_checks", header)
	}
	if body != "" {
		bs = "pcre:" + writeTable(t, "body_checks", body)
	}
	c, err := Open(hs, bs)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

func apply(t *testing.T, c *Checks, msg string) (string, Result) {
	t.Helper()
	var out bytes.Buffer
	res, err := c.Apply(strings.NewReader(msg), &out)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return out.String(), res
}

// crlf writes a message with CRLF line ends, as the spool stores it.
func crlf(lines ...string) string {
	return strings.Join(lines, "\r\n")
}

// The guide's /etc/postfix/header_checks, as written, hides the SSO host in
// the relay's own Received: header and drops the one that names localhost.
func TestSeedExample(t *testing.T) {
	c, err := Open("pcre:testdata/header_checks", "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	in := crlf(
		"Received: from sso-api-01.zombig.name (sso-api-01.zombig.name [10.20.30.40])",
		"\tby relay.zombig.name (Postfix) with ESMTP id 3F2A1C0123",
		"\tfor <user@example.com>; Tue, 14 Mar 2017 10:00:00 +0300 (MSK)",
		"Received: from localhost (localhost [127.0.0.1])",
		"\tby sso-api-01.zombig.name (Postfix) with ESMTP id 77B0",
		"\tfor <user@example.com>; Tue, 14 Mar 2017 09:59:59 +0300 (MSK)",
		"From: SSO <noreply@zombig.name>",
		"To: user@example.com",
		"Subject: Password recovery",
		"",
		"Your recovery code is 1234.",
		"",
	)
	want := crlf(
		// The space before ${2} in the guide's REPLACE text stays at the
		// end of the first line; the folding of the rest is kept.
		"Received: from login.zombig.name (unknown [unknown]) ",
		"\tby relay.zombig.name (Postfix) with ESMTP id 3F2A1C0123",
		"\tfor <user@example.com>; Tue, 14 Mar 2017 10:00:00 +0300 (MSK)",
		"From: SSO <noreply@zombig.name>",
		"To: user@example.com",
		"Subject: Password recovery",
		"",
		"Your recovery code is 1234.",
		"",
	)
	got, res := apply(t, c, in)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Apply output (-want +got):\n%s", diff)
	}
	for _, hidden := range []string{"sso-api", "10.20.30.40", "localhost"} {
		if strings.Contains(got, hidden) {
			t.Errorf("output still contains %q", hidden)
		}
	}
	if diff := cmp.Diff(Result{}, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name         string
		header, body string // table rules
		in, want     string
		res          Result
	}{
		{
			name:   "IGNORE removes every line of a folded header",
			header: "/^X-Trace:/ IGNORE\n",
			in:     crlf("X-Trace: a", "\tb", " c", "Subject: s", "", "body", ""),
			want:   crlf("Subject: s", "", "body", ""),
		},
		{
			name:   "folded header matched unfolded, kept byte for byte",
			header: "/^Subject: a long\\n\\tsubject$/ WARN folded\n",
			in:     crlf("Subject: a long", "\tsubject", "To:  x ", "", "b", ""),
			want:   crlf("Subject: a long", "\tsubject", "To:  x ", "", "b", ""),
			res:    Result{Warnings: []string{"header Subject: a long  subject: folded"}},
		},
		{
			name:   "pattern across the fold",
			header: "/^X-Spam: yes.*score=9$/ HOLD spam score",
			in:     crlf("X-Spam: yes", "  score=9", "", ""),
			want:   crlf("X-Spam: yes", "  score=9", "", ""),
			res:    Result{Verdict: Hold, Text: "spam score", Match: "header X-Spam: yes   score=9"},
		},
		{
			name:   "REPLACE a folded header with one line",
			header: "/^X-Mailer:/ REPLACE X-Mailer: relaykeeper\n",
			in:     crlf("X-Mailer: Foo", "\t1.0", "Subject: s", "", ""),
			want:   crlf("X-Mailer: relaykeeper", "Subject: s", "", ""),
		},
		{
			name:   "REPLACE keeps the folding a substitution carries",
			header: "/^Subject: (.*)$/ REPLACE Subject: [ext] $1\n",
			in:     crlf("Subject: one", "\ttwo", "", ""),
			want:   crlf("Subject: [ext] one", "\ttwo", "", ""),
		},
		{
			name:   "REPLACE never starts a new header or ends the section",
			header: "/^(Subject: a\\n)\\s*(.*)$/ REPLACE ${1}${2}\n",
			in:     crlf("Subject: a", "\tb", "", ""),
			want:   crlf("Subject: a b", "", ""),
		},
		{
			name:   "REPLACE text that is no header after substitution is ignored",
			header: "/^Subject: (.*)$/ REPLACE $1\n",
			in:     crlf("Subject: hello", "", ""),
			want:   crlf("Subject: hello", "", ""),
			res: Result{Problems: []string{
				`header_checks result "REPLACE hello" for header Subject: hello: REPLACE text "hello" is not a header; want "Name: value"`,
			}},
		},
		{
			name:   "PREPEND goes right before each header that matched",
			header: "/^Subject:/ PREPEND X-Seen: subject\n/^To:/ PREPEND X-Seen: to\n",
			in:     crlf("From: a", "To: b", "Subject: c", "", "x", ""),
			want:   crlf("From: a", "X-Seen: to", "To: b", "X-Seen: subject", "Subject: c", "", "x", ""),
		},
		{
			name:   "REJECT without text, nothing after it is checked",
			header: "/^Subject: buy/ REJECT\n/^X-Later:/ IGNORE\n",
			body:   "/^body/ DISCARD\n",
			in:     crlf("Subject: buy now", "X-Later: 1", "", "body", ""),
			want:   crlf("Subject: buy now", "X-Later: 1", "", "body", ""),
			res:    Result{Verdict: Reject, Code: 550, Enhanced: "5.7.1", Text: "message content rejected", Match: "header Subject: buy now"},
		},
		{
			name:   "REJECT with text",
			header: "/^Subject: buy/ REJECT no ads here\n",
			in:     crlf("Subject: buy", "", ""),
			want:   crlf("Subject: buy", "", ""),
			res:    Result{Verdict: Reject, Code: 550, Enhanced: "5.7.1", Text: "no ads here", Match: "header Subject: buy"},
		},
		{
			name:   "REJECT with a 4.x.x code is temporary",
			header: "/^Subject: buy/ REJECT 4.7.0 try later\n",
			in:     crlf("Subject: buy", "", ""),
			want:   crlf("Subject: buy", "", ""),
			res:    Result{Verdict: Reject, Code: 451, Enhanced: "4.7.0", Text: "try later", Match: "header Subject: buy"},
		},
		{
			name:   "HOLD, then DISCARD wins",
			header: "/^X-A:/ HOLD first\n/^X-B:/ HOLD second\n/^X-C:/ DISCARD gone\n/^X-D:/ IGNORE\n",
			in:     crlf("X-A: 1", "X-B: 2", "X-C: 3", "X-D: 4", "", ""),
			want:   crlf("X-A: 1", "X-B: 2", "X-C: 3", "X-D: 4", "", ""),
			res:    Result{Verdict: Discard, Text: "gone", Match: "header X-C: 3"},
		},
		{
			name:   "WARN, INFO, FILTER, BCC, DUNNO and OK",
			header: "/^Subject:/ WARN look\n/^X-Info:/ INFO\n/^X-F1:/ FILTER smtp:[127.0.0.1]:10025\n/^X-F2:/ FILTER scan:\n/^X-Bcc: (.*)$/ BCC $1\n/^X-Keep: ok/ DUNNO\n/^X-Keep: yes/ OK\n/^X-Keep:/ IGNORE\n",
			in:     crlf("Subject: s", "X-Info: i", "X-F1: 1", "X-F2: 2", "X-Bcc: a@example.com", "X-Bcc: a@example.com", "X-Keep: ok", "X-Keep: yes", "X-Keep: no", "", ""),
			want:   crlf("Subject: s", "X-Info: i", "X-F1: 1", "X-F2: 2", "X-Bcc: a@example.com", "X-Bcc: a@example.com", "X-Keep: ok", "X-Keep: yes", "", ""),
			res: Result{
				Filter:   "scan:",
				BCC:      []string{"a@example.com"},
				Warnings: []string{"header Subject: s: look"},
				Info:     []string{"header X-Info: i"},
			},
		},
		{
			name:   "REDIRECT stops the checks, as in cleanup(8)",
			header: "/^X-R:/ REDIRECT postmaster@example.com\n/^X-Drop:/ IGNORE\n",
			in:     crlf("X-R: 1", "X-Drop: 2", "", ""),
			want:   crlf("X-R: 1", "X-Drop: 2", "", ""),
			res:    Result{Redirect: "postmaster@example.com"},
		},
		{
			name:   "PASS stops the checks, STRIP deletes and logs",
			header: "/^X-Strip:/ STRIP internal\n/^X-Pass:/ PASS trusted\n/^X-Drop:/ IGNORE\n",
			body:   "/^reject/ REJECT\n",
			in:     crlf("X-Strip: s", "X-Pass: p", "X-Drop: d", "", "reject me", ""),
			want:   crlf("X-Pass: p", "X-Drop: d", "", "reject me", ""),
			res:    Result{Info: []string{"header X-Strip: s: internal", "header X-Pass: p: trusted"}},
		},
		{
			name: "body_checks REJECT on a body line",
			body: "/^<iframe src=(3D)?cid:.* height=(3D)?0 width=(3D)?0>$/ REJECT IFRAME vulnerability exploit\n",
			in:   crlf("Subject: s", "", "hello", "<iframe src=3Dcid:x height=3D0 width=3D0>", "more", ""),
			want: crlf("Subject: s", "", "hello", "<iframe src=3Dcid:x height=3D0 width=3D0>", "more", ""),
			res: Result{Verdict: Reject, Code: 550, Enhanced: "5.7.1", Text: "IFRAME vulnerability exploit",
				Match: "body <iframe src=3Dcid:x height=3D0 width=3D0>"},
		},
		{
			name: "body IGNORE, REPLACE and PREPEND",
			body: "/^secret/ IGNORE\n/^old (.*)/ REPLACE new $1\n/^sig/ PREPEND --\n",
			in:   crlf("Subject: s", "", "secret 1", "old text", "sig", ""),
			want: crlf("Subject: s", "", "new text", "--", "sig", ""),
		},
		{
			name:   "header_checks never see body lines, body_checks never see headers",
			header: "/^Subject:/ IGNORE\n",
			body:   "/^To:/ IGNORE\n",
			in:     crlf("To: a", "Subject: s", "", "Subject: in the body", "To: in the body", ""),
			want:   crlf("To: a", "", "Subject: in the body", ""),
		},
		{
			name: "MIME part headers are body lines",
			body: "/^Content-Type: application\\/x-msdownload/ REJECT 5.7.1 no executables\n",
			in: crlf("Content-Type: multipart/mixed; boundary=b", "", "--b",
				"Content-Type: application/x-msdownload", "", "TVqQ", "--b--", ""),
			want: crlf("Content-Type: multipart/mixed; boundary=b", "", "--b",
				"Content-Type: application/x-msdownload", "", "TVqQ", "--b--", ""),
			res: Result{Verdict: Reject, Code: 550, Enhanced: "5.7.1", Text: "no executables",
				Match: "body Content-Type: application/x-msdownload"},
		},
		{
			name: "empty body lines never match",
			body: "/^$/ REJECT\n/^\\s*$/ REJECT\n",
			in:   crlf("Subject: s", "", "", "", ""),
			want: crlf("Subject: s", "", "", "", ""),
		},
		{
			name:   "message without a body",
			header: "/^Subject:/ REPLACE Subject: new\n",
			in:     crlf("Subject: old", "", ""),
			want:   crlf("Subject: new", "", ""),
		},
		{
			name:   "bare header section",
			header: "/^Subject:/ REPLACE Subject: new\n/^To:/ PREPEND X-To: yes\n",
			in:     crlf("Subject: old", "To: x", ""),
			want:   crlf("Subject: new", "X-To: yes", "To: x", ""),
		},
		{
			name:   "last header without a line end",
			header: "/^To:/ REPLACE To: y\n",
			in:     "Subject: s\r\nTo: x",
			want:   "Subject: s\r\nTo: y",
		},
		{
			name:   "empty message",
			header: "/./ IGNORE\n",
			in:     "",
			want:   "",
		},
		{
			name:   "a line that is no header starts the body",
			header: "/^Subject:/ WARN w\n",
			body:   "/^this is/ REJECT\n",
			in:     crlf("Subject: s", "this is the body", ""),
			want:   crlf("Subject: s", "this is the body", ""),
			res: Result{Warnings: []string{"header Subject: s: w"}, Verdict: Reject, Code: 550, Enhanced: "5.7.1",
				Text: "message content rejected", Match: "body this is the body"},
		},
		{
			name:   "8-bit content passes through and matches",
			header: "/^Subject: Grüße/ WARN german\n/^X-Bin:/ IGNORE\n",
			body:   "/caf.?é/ REPLACE coffee\n",
			in:     crlf("Subject: Grüße", "X-Bin: \xff\xfe\x80", "X-Raw: \xe9t\xe9", "", "café", "na\xefve \xff", ""),
			want:   crlf("Subject: Grüße", "X-Raw: \xe9t\xe9", "", "coffee", "na\xefve \xff", ""),
			res:    Result{Warnings: []string{"header Subject: Grüße: german"}},
		},
		{
			name:   "bare LF line ends",
			header: "/^X-A:/ PREPEND X-Before: 1\n/^X-B:/ REPLACE X-B: new\n",
			in:     "X-A: a\n\tfolded\nX-B: b\n\tfolded\n\nbody\n",
			want:   "X-Before: 1\nX-A: a\n\tfolded\nX-B: new\n\nbody\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openChecks(t, tc.header, tc.body)
			got, res := apply(t, c, tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Apply output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.res, res, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoChecksCopies(t *testing.T) {
	msg := crlf("Subject: s", "", "body \xff", "")
	for name, c := range map[string]*Checks{"nil": nil, "zero": {}, "empty specs": mustOpenChecks(t, "", "")} {
		got, res := apply(t, c, msg)
		if got != msg {
			t.Errorf("%s: Apply output = %q; want the input %q", name, got, msg)
		}
		if diff := cmp.Diff(Result{}, res); diff != "" {
			t.Errorf("%s: Result (-want +got):\n%s", name, diff)
		}
	}
}

func mustOpenChecks(t *testing.T, header, body string) *Checks {
	t.Helper()
	c, err := Open(header, body)
	if err != nil {
		t.Fatalf("Open(%q, %q): %v", header, body, err)
	}
	return c
}
