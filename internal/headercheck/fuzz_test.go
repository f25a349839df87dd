package headercheck

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzApply: no message panics Apply with a small table of every action;
// with no tables, and with tables that only log, the output is the input.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		"Received: from sso-api-01.zombig.name (x [10.0.0.1])\r\n\tby relay\r\nSubject: spam\r\n\r\nbody\r\n",
		"X-Drop: a\r\n b\r\nX-Replace: c\r\n\td\r\nX-Prepend: e\r\n\r\nreplace f\r\nprepend\r\ndrop me\r\n",
		"X-Bad: no header\r\nX-Hold: 1\r\nX-Warn: 2\r\nX-Filter: 3\r\nX-Bcc: x@y\r\nX-Bcc: nobody\r\n\r\nreject\r\n",
		"X-Redirect: 1\r\nX-Drop: 2\r\n\r\n",
		"X-Pass: 1\r\nX-Strip: 2\r\n",
		"X-Discard: 1\n\nreject\n",
		" continuation first\r\nSubject: x\r\n",
		"Subject: x\r\nnot a header\r\nreject\r\n",
		"Subject: \xff\xfe\r\n\r\n\x00\x80\r\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/exe\r\n\r\n--b--\r\n",
		"Subject: x",
		"",
		"\r\n",
	} {
		f.Add([]byte(s))
	}
	checks, err := Open("pcre:testdata/fuzz_header_checks", "regexp:testdata/fuzz_body_checks")
	if err != nil {
		f.Fatal(err)
	}
	logOnly, err := Open("pcre:testdata/warn_checks", "pcre:testdata/warn_checks")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var out bytes.Buffer
		res, err := checks.Apply(bytes.NewReader(msg), &out)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if res.Verdict == Reject && (res.Code != 550 && res.Code != 451 || res.Enhanced == "" || res.Text == "") {
			t.Fatalf("Reject without a reply: %+v", res)
		}
		if strings.ContainsAny(res.Text+res.Match, "\r\n") {
			t.Fatalf("reply or match text spans lines: %+v", res)
		}
		for _, c := range []*Checks{nil, logOnly} {
			out.Reset()
			if _, err := c.Apply(bytes.NewReader(msg), &out); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !bytes.Equal(out.Bytes(), msg) {
				t.Fatalf("Apply changed the message:\n in: %q\nout: %q", msg, out.Bytes())
			}
		}
	})
}
