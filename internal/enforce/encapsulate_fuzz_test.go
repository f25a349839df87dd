package enforce

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var boundaryParam = regexp.MustCompile(`boundary="([^"]+)"`)

// FuzzEncapsulate: whatever message an upstream refused (its header is the
// sender's to write) and whatever the refusal said, the encapsulating
// message has a header section of exactly the relay's own fields, each a
// CRLF line or folded, the original as its attachment byte for byte, and a
// boundary that occurs only where the relay put it.
func FuzzEncapsulate(f *testing.F) {
	for _, s := range []string{originalASCII, original8bit, "", "\r\n", "From: a\r\n\r\nx", "Subject: =?utf-8?b?AAAK?=\r\n\r\n",
		"From: \"a\r\n b\" <a@b>\r\nMessage-Id: <x\r\n y>\r\n\r\n", "X-Relaykeeper-Encapsulated: 1\r\n\r\n", "From: \x00\x7f <\xff@x>\r\nSubject: " + strings.Repeat("w ", 80) + "\r\n\r\n"} {
		f.Add(s, "550 5.7.26 DMARC\r\nBcc: x", "bounces@example.org")
	}
	f.Fuzz(func(t *testing.T, original, reason, sender string) {
		opts := EncapsulateOptions{
			From: "postmaster@relay.example", To: "bob@gmail.com", OriginalSender: sender, Reason: reason,
			Client: netip.MustParseAddr("203.0.113.9"), Now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			MessageID: func() string { return "enc-1@relay.example" },
		}
		var out bytes.Buffer
		err := EncapsulateMessage(&out, strings.NewReader(original), opts)
		if errors.Is(err, ErrEncapsulated) {
			if out.Len() != 0 || !IsEncapsulated(readMailHeader(bufio.NewReader(strings.NewReader(original)))) {
				t.Fatalf("EncapsulateMessage(%q): ErrEncapsulated with %d bytes written", original, out.Len())
			}
			return
		} else if err != nil {
			t.Fatalf("EncapsulateMessage(%q): %v", original, err)
		}
		got := out.String()
		head, _, ok := strings.Cut(got, "\r\n\r\n")
		if !ok {
			t.Fatalf("EncapsulateMessage(%q): no header section:\n%q", original, got)
		}
		var names []string
		for _, l := range strings.Split(head, "\r\n") {
			if strings.ContainsAny(l, "\r\n") {
				t.Fatalf("EncapsulateMessage(%q): header line %q breaks", original, l)
			}
			if l != "" && (l[0] == ' ' || l[0] == '\t') {
				continue
			}
			name, _, ok := strings.Cut(l, ":")
			if !ok {
				t.Fatalf("EncapsulateMessage(%q): header line %q is no field:\n%s", original, l, head)
			}
			names = append(names, name)
		}
		want := []string{"From", "To", "Reply-To", "Subject", "Date", "Message-ID", "References", "Auto-Submitted", EncapsulatedHeader, "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}
		seen := map[string]bool{}
		for _, n := range names {
			if !slices.Contains(want, n) || seen[n] {
				t.Fatalf("EncapsulateMessage(%q): fields %q", original, names)
			}
			seen[n] = true
		}
		m := boundaryParam.FindStringSubmatch(head)
		if m == nil {
			t.Fatalf("EncapsulateMessage(%q): no boundary in\n%s", original, head)
		}
		tail := "\r\n--" + m[1] + "--\r\n"
		if !strings.HasSuffix(got, original+tail) || strings.Count(got, "--"+m[1]) != 3 {
			t.Fatalf("EncapsulateMessage(%q): the original is not the attachment, whole, after the only boundaries:\n%q", original, got)
		}
	})
}
