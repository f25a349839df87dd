package milter

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// FuzzApply feeds a content file and a milter's header changes (as a milter
// sends them at end-of-message) to apply. Whatever the milter asks, the
// content file must stay a message whose header section holds exactly the
// fields the changes make (no field lost into the body, none made up by a
// line break in a value) and whose body, when the milter did not replace
// it, is the original body byte for byte.
func FuzzApply(f *testing.F) {
	f.Add(testContent, byte(0), uint16(0), "X-Spam-Status", "No, score=0.1\n\ttests=NONE", byte(2), uint16(1), "Subject", "[SPAM] hello")
	f.Add(testContent, byte(1), uint16(1), "Authentication-Results", "relay; dkim=pass", byte(2), uint16(1), "Received", "")
	f.Add("Subject: x\r\nnot a header\r\n", byte(0), uint16(0), "X-A", "1", byte(2), uint16(2), "X-Folded", "three")
	f.Add("Subject: x\n\nLF only\n", byte(1), uint16(9), "X-B", "a\n b", byte(0), uint16(0), "X-C", "")
	f.Add("", byte(0), uint16(0), "X-A", "1", byte(3), uint16(0), "", "")
	f.Fuzz(func(t *testing.T, content string, op1 byte, idx1 uint16, name1, value1 string, op2 byte, idx2 uint16, name2, value2 string) {
		dir := t.TempDir()
		cp, ep := dir+"/6B0252D2F906FE64.content", dir+"/6B0252D2F906FE64.envelope.new"
		if err := os.WriteFile(cp, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		env := &spool.Envelope{ID: "6B0252D2F906FE64", From: "alice@example.org", Recipients: []spool.Recipient{{Addr: "bob@example.net", Status: spool.Pending}}}
		if err := os.WriteFile(ep, env.Marshal(), 0o640); err != nil {
			t.Fatal(err)
		}
		msg, err := readMessage(cp, ep)
		if err != nil {
			t.Fatal(err)
		}
		defer msg.close()
		origBody := content[msg.bodyOff:]
		var mods []gomilter.ModifyAction
		for _, m := range []struct {
			op          byte
			idx         uint16
			name, value string
		}{{op1, idx1, name1, value1}, {op2, idx2, name2, value2}} {
			code := []gomilter.ModifyActCode{gomilter.ActAddHeader, gomilter.ActInsertHeader, gomilter.ActChangeHeader}[int(m.op)%3]
			mods = append(mods, gomilter.ModifyAction{Code: code, HeaderIndex: uint32(m.idx), HeaderName: m.name, HeaderValue: m.value})
		}
		for _, m := range mods {
			if checkHeaderChange(m) != nil {
				return // the session refuses the change, as a protocol error
			}
		}
		if _, err := msg.apply(mods); err != nil {
			t.Fatalf("apply: %v", err)
		}
		// The model: what the changes make of the field names.
		var names []string
		for _, fl := range msg.fields {
			names = append(names, fl.name)
		}
		model := make([]field, len(names))
		for i, n := range names {
			model[i] = field{name: n, raw: []byte{}}
		}
		for _, m := range mods {
			switch m.Code {
			case gomilter.ActAddHeader:
				model = append(model, field{name: m.HeaderName})
			case gomilter.ActInsertHeader:
				i := min(int(m.HeaderIndex), len(model))
				model = append(model[:i], append([]field{{name: m.HeaderName}}, model[i:]...)...)
			case gomilter.ActChangeHeader:
				model = changeHeader(model, int(m.HeaderIndex), m.HeaderName, m.HeaderValue)
			}
		}
		got, err := os.ReadFile(cp)
		if err != nil {
			t.Fatal(err)
		}
		again, err := readMessage(cp, ep)
		if err != nil {
			t.Fatal(err)
		}
		defer again.close()
		var gotNames, wantNames []string
		for _, fl := range again.fields {
			gotNames = append(gotNames, fl.name)
		}
		for _, fl := range model {
			wantNames = append(wantNames, fl.name)
		}
		if strings.Join(gotNames, "\x00") != strings.Join(wantNames, "\x00") {
			t.Fatalf("content %q after %+v: fields %q; want %q\n%q", content, mods, gotNames, wantNames, got)
		}
		if !bytes.HasSuffix(got, []byte(origBody)) || int64(len(got))-int64(len(origBody)) != again.bodyOff {
			t.Fatalf("content %q after %+v: the body %q is not where it was: %q", content, mods, origBody, got)
		}
	})
}

// FuzzReplyResult: whatever code and text a milter sets as its reply, the
// result is a valid 4xx or 5xx reply on one printable line, or none.
func FuzzReplyResult(f *testing.F) {
	for _, s := range []string{"5.7.1 go away", "4.7.1 a\r\n451-4.7.1 b", "", "5.7.1", "\x00\xff", "550 5.7.1 x\r\n550 5.7.2 y", "2.0.0 ok"} {
		f.Add(550, s)
		f.Add(451, s)
	}
	f.Fuzz(func(t *testing.T, code int, text string) {
		res, ok := replyResult(code, text)
		if !ok {
			if code/100 == 4 || code/100 == 5 {
				t.Fatalf("replyResult(%d, %q) refused", code, text)
			}
			return
		}
		want := filter.Reject
		if code/100 == 4 {
			want = filter.TempFail
		}
		if res.Outcome != want || res.Code != code || !isEnhanced(res.Enhanced) || res.Enhanced[0] != byte('0'+code/100) {
			t.Fatalf("replyResult(%d, %q) = %+v", code, text, res)
		}
		if res.Text == "" || strings.ContainsFunc(res.Text, func(r rune) bool { return r < ' ' || r > '~' }) {
			t.Fatalf("replyResult(%d, %q): text %q", code, text, res.Text)
		}
	})
}

// TestMalformedHeaderChange: a milter that adds a field with an empty name
// used to make the content file's header section end at the ":" line it
// wrote, so that the fields after it (and the milter's own) became body;
// a value with an unfolded line break made up fields of its own. Such a
// change is a protocol error now: milter_default_action, content as it was.
func TestMalformedHeaderChange(t *testing.T) {
	for _, tt := range []struct{ name, value string }{
		{"", ""}, {"", "x"}, {"X Bad", "1"}, {"X-A:", "1"}, {"X-A", "1\r\nBcc: eve@example.net"}, {"X-A", "1\n\nbody"}, {"X-A", "1\n"},
	} {
		addr := startMilter(t, &testMilter{eom: func(m *gomilter.Modifier) gomilter.Response {
			m.InsertHeader(0, tt.name, tt.value)
			return gomilter.RespAccept
		}})
		cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
		res := newMilter(t, addr, Options{}).Run(context.Background(), cp, ep)
		if res.Outcome != filter.TempFail {
			t.Errorf("insert %q: %q: Run = %v; want a temporary failure", tt.name, tt.value, res)
		}
		if got := readFile(t, cp); got != testContent {
			t.Errorf("insert %q: %q: content changed to %q", tt.name, tt.value, got)
		}
	}
}
