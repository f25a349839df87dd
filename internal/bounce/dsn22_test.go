package bounce

import (
	"bytes"
	"testing"
)

// TestDsn22Latin1HeadersNotGlobal: RFC 6533's message/global and
// message/global-headers carry UTF-8 header fields (RFC 6532). An
// original whose header holds raw octets that are not UTF-8 (an old
// mailer's Latin-1 Subject) was returned in those types all the same, so
// that a reader decodes its header as UTF-8 it is not. Such an original
// goes back as message/rfc822 or text/rfc822-headers, 8bit, as it came.
func TestDsn22Latin1HeadersNotGlobal(t *testing.T) {
	const latin1 = "From: <alice@example.org>\r\nSubject: caf\xe9 cr\xe8me\r\n\r\nbody\r\n"
	for ret, want := range map[string]string{"FULL": "message/rfc822", "HDRS": "text/rfc822-headers"} {
		env := testEnv()
		env.Ret = ret
		n := parse(t, build(t, env, latin1, Failure, testOpts()))
		if len(n.parts) != 3 {
			t.Fatalf("RET=%s: %d parts; want 3", ret, len(n.parts))
		}
		p := n.parts[2]
		if p.ctype != want || p.header.Get("Content-Transfer-Encoding") != "8bit" {
			t.Errorf("RET=%s: returned as %q, %q; want %s, 8bit", ret, p.ctype, p.header.Get("Content-Transfer-Encoding"), want)
		}
		if !bytes.Contains(p.body, []byte("caf\xe9")) {
			t.Errorf("RET=%s: the header's octets did not come back as they were:\n%q", ret, p.body)
		}
	}
}
