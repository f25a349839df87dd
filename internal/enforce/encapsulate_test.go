package enforce

import (
	"bytes"
	"errors"
	"io"
	"net/mail"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
)

const originalASCII = "Received: from client.example ([203.0.113.9])\r\n" +
	"\tby relay.example with ESMTP; Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
	"From: Alice Example <alice@dmarc-reject.example>\r\n" +
	"To: bob@gmail.com\r\n" +
	"Subject: Quarterly\r\n report\r\n" +
	"Message-ID: <orig-1@dmarc-reject.example>\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; d=other.example; b=AAAA\r\n" +
	"\r\n" +
	"Hello Bob,\r\n" +
	"--not-a-boundary\r\n" +
	"the figures.\r\n"

// original8bit has a raw UTF-8 body, an ISO-8859-1 subject in RFC 2047
// words, and no final line ending.
const original8bit = "From: =?utf-8?q?Ren=C3=A9e?= <renee@example.fr>\n" +
	"Subject: =?iso-8859-1?q?Caf=E9_cr=E8me?=\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n" +
	"Un café crème, s'il vous plaît.\n" +
	"\xff\xfe raw bytes, no final newline"

func encapsulateTest(t *testing.T, original string, opts EncapsulateOptions) (*message.Entity, string) {
	t.Helper()
	if opts.From == "" {
		opts = EncapsulateOptions{
			From:           "postmaster@relay.example",
			To:             "bob@gmail.com",
			OriginalSender: "bounces@dmarc-reject.example",
			Reason:         "550-5.7.26 Unauthenticated email from dmarc-reject.example is not accepted due to domain's DMARC policy. 550 5.7.26 gsmtp",
			Client:         netip.MustParseAddr("203.0.113.9"),
			Now:            time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			MessageID:      func() string { return "enc-1@relay.example" },
		}
	}
	var out bytes.Buffer
	if err := EncapsulateMessage(&out, strings.NewReader(original), opts); err != nil {
		t.Fatalf("EncapsulateMessage: %v", err)
	}
	e, err := message.Read(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("go-message cannot read the result: %v\n%s", err, out.String())
	}
	return e, out.String()
}

func TestEncapsulateHeaderAndParts(t *testing.T) {
	for _, tt := range []struct {
		name, original, subject, replyTo, cte string
	}{
		{"ascii", originalASCII, "Fwd: Quarterly report", `"Alice Example" <alice@dmarc-reject.example>`, "7bit"},
		{"8bit", original8bit, "Fwd: Café crème", `=?utf-8?q?Ren=C3=A9e?= <renee@example.fr>`, "8bit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, raw := encapsulateTest(t, tt.original, EncapsulateOptions{})
			h := e.Header
			checks := map[string]string{
				"From":                       "postmaster@relay.example",
				"To":                         "bob@gmail.com",
				"Reply-To":                   tt.replyTo,
				"Date":                       "Sun, 22 Nov 2026 10:00:00 +0000",
				"Message-Id":                 "<enc-1@relay.example>",
				"Auto-Submitted":             "auto-generated",
				"X-Relaykeeper-Encapsulated": "1",
				"Mime-Version":               "1.0",
				"Content-Transfer-Encoding":  tt.cte,
			}
			for k, want := range checks {
				if got := h.Get(k); got != want {
					t.Errorf("%s: %q; want %q", k, got, want)
				}
			}
			if got, err := h.Text("Subject"); err != nil || got != tt.subject {
				t.Errorf("Subject = %q, %v; want %q", got, err, tt.subject)
			}
			if !IsEncapsulated(&h) {
				t.Error("IsEncapsulated(result) = false")
			}
			// The header is ASCII with short lines whatever the original.
			head, _, _ := strings.Cut(raw, "\r\n\r\n")
			for _, line := range strings.Split(head, "\r\n") {
				if len(line) > 998 || !asciiOnly(line) {
					t.Errorf("header line %q: not short ASCII", line)
				}
			}

			mr := e.MultipartReader()
			if mr == nil {
				t.Fatal("not multipart")
			}
			note, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			if ct, _, _ := note.Header.ContentType(); ct != "text/plain" {
				t.Errorf("first part is %s; want text/plain", ct)
			}
			text, _ := io.ReadAll(note.Body)
			for _, want := range []string{"DMARC", "<bounces@dmarc-reject.example>", "203.0.113.9", "5.7.26", "domain's DMARC"} {
				if !strings.Contains(strings.Join(strings.Fields(string(text)), " "), want) {
					t.Errorf("covering note lacks %q:\n%s", want, text)
				}
			}
			att, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			if ct, _, _ := att.Header.ContentType(); ct != "message/rfc822" {
				t.Errorf("second part is %s; want message/rfc822", ct)
			}
			if got := att.Header.Get("Content-Transfer-Encoding"); got != tt.cte {
				t.Errorf("attachment Content-Transfer-Encoding = %q; want %q", got, tt.cte)
			}
			body, _ := io.ReadAll(att.Body)
			if !bytes.Equal(body, []byte(tt.original)) {
				t.Errorf("attachment differs from the original:\n got %q\nwant %q", body, tt.original)
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Errorf("a third part: %v", err)
			}
			// And byte for byte in the raw output, between the part's
			// header and the closing boundary's CRLF.
			_, boundary, _ := strings.Cut(h.Get("Content-Type"), `boundary="`)
			boundary = strings.TrimSuffix(boundary, `"`)
			i := strings.Index(raw, "Content-Type: message/rfc822\r\n")
			_, rest, _ := strings.Cut(raw[i:], "\r\n\r\n")
			if want := tt.original + "\r\n--" + boundary + "--\r\n"; rest != want {
				t.Errorf("raw attachment mismatch:\n got %q\nwant %q", rest, want)
			}
		})
	}
}

func TestEncapsulateNeverTwice(t *testing.T) {
	_, raw := encapsulateTest(t, originalASCII, EncapsulateOptions{})
	var out bytes.Buffer
	err := EncapsulateMessage(&out, strings.NewReader(raw), EncapsulateOptions{From: "postmaster@relay.example", To: "bob@gmail.com"})
	if !errors.Is(err, ErrEncapsulated) || out.Len() != 0 {
		t.Errorf("EncapsulateMessage(encapsulated) = %v, %d bytes; want ErrEncapsulated, nothing", err, out.Len())
	}
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil || !IsEncapsulated(m.Header) {
		t.Errorf("IsEncapsulated(net/mail header) = false, %v", err)
	}
	m, _ = mail.ReadMessage(strings.NewReader(originalASCII))
	if IsEncapsulated(m.Header) {
		t.Error("IsEncapsulated(original) = true")
	}
}

func TestEncapsulateDefaultsAndErrors(t *testing.T) {
	// Reply-To from the original's From when not given; Message-ID made up
	// at the relay's domain; References the original.
	e, _ := encapsulateTest(t, originalASCII, EncapsulateOptions{
		From: `"Relay" <postmaster@relay.example>`, To: "bob@gmail.com", OriginalSender: ""})
	if got := e.Header.Get("Reply-To"); got != `"Alice Example" <alice@dmarc-reject.example>` {
		t.Errorf("Reply-To = %q", got)
	}
	if got := e.Header.Get("Message-Id"); !strings.HasSuffix(got, "@relay.example>") || !strings.HasPrefix(got, "<") {
		t.Errorf("Message-ID = %q; want <...@relay.example>", got)
	}
	if got := e.Header.Get("References"); got != "<orig-1@dmarc-reject.example>" {
		t.Errorf("References = %q", got)
	}
	// No usable From: the envelope sender.
	e, _ = encapsulateTest(t, "Subject: x\r\n\r\nbody\r\n", EncapsulateOptions{
		From: "postmaster@relay.example", To: "bob@gmail.com", OriginalSender: "a@b.example"})
	if got := e.Header.Get("Reply-To"); got != "<a@b.example>" {
		t.Errorf("Reply-To without From = %q; want <a@b.example>", got)
	}
	for _, opts := range []EncapsulateOptions{
		{From: "", To: "bob@gmail.com"},
		{From: "postmaster@relay.example", To: "bob@gmail.com\r\nBcc: eve@example.com"},
	} {
		if err := EncapsulateMessage(io.Discard, strings.NewReader(originalASCII), opts); err == nil {
			t.Errorf("EncapsulateMessage(%+v) succeeded", opts)
		}
	}
}

func TestEncapsulateLongSubject(t *testing.T) {
	long := strings.Repeat("Überlange Betreffzeile ", 20)
	e, _ := encapsulateTest(t, "Subject: "+long+"\r\n\r\nx\r\n", EncapsulateOptions{})
	if got, _ := e.Header.Text("Subject"); got != "Fwd: "+strings.TrimSpace(long) {
		t.Errorf("Subject = %q", got)
	}
}

func TestParseFromHeader(t *testing.T) {
	from, subject, id := ParseFromHeader(strings.NewReader(originalASCII))
	if from != "Alice Example <alice@dmarc-reject.example>" || subject != "Quarterly report" || id != "<orig-1@dmarc-reject.example>" {
		t.Errorf("ParseFromHeader = %q, %q, %q", from, subject, id)
	}
	from, subject, id = ParseFromHeader(strings.NewReader(original8bit))
	if from != "=?utf-8?q?Ren=C3=A9e?= <renee@example.fr>" || subject != "Café crème" || id != "" {
		t.Errorf("ParseFromHeader(8bit) = %q, %q, %q", from, subject, id)
	}
	// The header ends at the empty line; body text is never read as header.
	from, _, _ = ParseFromHeader(strings.NewReader("Subject: a\n\nFrom: body@example.com\n"))
	if from != "" {
		t.Errorf("ParseFromHeader read the body: From = %q", from)
	}
}
