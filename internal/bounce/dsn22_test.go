package bounce

import (
	"bytes"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
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

// TestDsn22UTF8OrcptControls: RFC 6533's utf-8 ORCPT reaches the relay
// decoded, and its decoder lets \x{01}, \x{7F} and \x{20} through: a
// control character, DEL and a blank in the address. The notice wrote the
// address as it stood, control octets and all, into its delivery status.
// An address that is no plain mailbox goes in RFC 6533's
// utf-8-addr-unitext (those characters, '\', '+' and '=' as \x{HEX});
// a plain one, ASCII or UTF-8, as it is.
func TestDsn22UTF8OrcptControls(t *testing.T) {
	for orcpt, want := range map[string]string{
		"utf-8;a\x01b c\x7fd@example.net":    `utf-8;a\x{01}b\x{20}c\x{7F}d@example.net`,
		"UTF-8;j\u00fcrgen+x\x02@example.de": `UTF-8;j` + "\u00fc" + `rgen\x{2B}x\x{02}@example.de`,
		"utf-8;j\u00fcrgen+x@example.de":     "utf-8;j\u00fcrgen+x@example.de",
		"rfc822;bob+x@example.net":           "rfc822;bob+x@example.net",
	} {
		env := testEnv()
		env.Recipients = env.Recipients[:1]
		env.Recipients[0].ORCPT = orcpt
		env.Recipients[0].Status = spool.Bounced
		env.Recipients[0].Reply = "550 5.1.1 no such user"
		raw := build(t, env, original, Failure, testOpts())
		for i, c := range raw {
			if c < ' ' && c != '\r' && c != '\n' && c != '\t' || c == 0x7f {
				t.Errorf("ORCPT %q: notice holds control octet %#02x at %d", orcpt, c, i)
				break
			}
		}
		g := dsnGroups(t, parse(t, raw).parts[1].body)
		if len(g) != 2 || g[1]["original-recipient"] != want {
			t.Errorf("ORCPT %q: Original-Recipient %q; want %q", orcpt, g[1]["original-recipient"], want)
		}
	}
}
