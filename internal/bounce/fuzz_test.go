package bounce

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzBuild: whatever an upstream answered, a client gave as ENVID or
// ORCPT, and the original holds, a failure notice is a well-formed
// message: lines of at most 998 octets ending in CRLF, a multipart/report
// whose delivery-status part has one group for the message and one for
// each recipient. A notice that breaks here is one a receiving MTA
// refuses, and the sender never learns that the mail was lost.
func FuzzBuild(f *testing.F) {
	f.Add("550 5.1.1 user unknown", "rfc822;bob@example.net", "QQ314159", []byte(original))
	f.Add("550-5.7.1 first\r\n550 5.7.1 second\r\nX-Injected: yes", "rfc822;x\r\nFoo: bar", "id\r\n", []byte("no header\n"))
	f.Add(strings.Repeat("é", 600), "utf-8;b\u00f6b@example.net", strings.Repeat("x", 2000), []byte("Subject: \xff\xfe\r\n\r\n"))
	f.Fuzz(func(t *testing.T, reply, orcpt, envid string, content []byte) {
		env := testEnv()
		env.EnvID = envid
		env.Recipients[0].Reply, env.Recipients[0].ORCPT = reply, orcpt
		env.Recipients[1].Reply = reply
		var b bytes.Buffer
		if err := Build(&b, env, bytes.NewReader(content), Failure, Recipients(env, Failure), testOpts()); err != nil {
			return // refused, not sent broken
		}
		raw := b.Bytes()
		head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		checkLines(t, "header", append(head, "\r\n"...))
		n := parse(t, raw)
		for _, p := range n.parts {
			if p.ctype != "message/rfc822" && p.ctype != "text/rfc822-headers" && p.ctype != "message/global" && p.ctype != "message/global-headers" {
				checkLines(t, p.ctype, p.body) // the original is returned as it came
			}
		}
		for _, p := range n.parts {
			if p.ctype != "message/delivery-status" && p.ctype != "message/global-delivery-status" {
				continue
			}
			if groups := dsnGroups(t, p.body); len(groups) != 1+len(Recipients(env, Failure)) {
				t.Fatalf("%d delivery-status groups for %d recipients:\n%s", len(groups), len(Recipients(env, Failure)), p.body)
			}
			return
		}
		t.Fatalf("no delivery-status part:\n%s", raw)
	})
}

func checkLines(t *testing.T, part string, b []byte) {
	t.Helper()
	for i, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
			t.Fatalf("%s: line %d is not CRLF-terminated or holds a bare CR: %q", part, i+1, line)
		}
		if len(line) > 1000 {
			t.Fatalf("%s: line %d is %d octets long", part, i+1, len(line))
		}
	}
}
