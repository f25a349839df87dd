package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
)

// Review 12 (issue 12's data path: DATA read in blocks, the CRLF
// normaliser, the bulk dot-stuffing writer to the upstream). Each message
// goes through the relay, store and forward and proxy, to an upstream that
// keeps the text exactly as it was sent; what it reads must be, octet for
// octet, what go-smtp's own data reader made of the client's text (the
// relay's semantics before the change), with the relay's line-ending
// repair, and correctly dot-stuffed with CRLF line endings only.

// review12Head starts each message, so that the relay adds no header
// field but its Received.
const review12Head = "Message-ID: <review12@e2e.test>\r\nDate: 5 Dec 2026 04:00:00 +0000\r\nSubject: review 12\r\n\r\n"

// review12Modes starts a relay in each mode, forwarding to up.
func review12Modes(t *testing.T, up string, extra ...string) []review12Mode {
	server := startRelay(t, "127.0.0.1", append([]string{"--as-server", "--interface", "127.0.0.1", "--forward-to", up,
		"--poll", "1", "--spool-dir", t.TempDir()}, extra...)...)
	proxy := startRelay(t, "127.0.0.1", append([]string{"--as-proxy", up, "--interface", "127.0.0.1",
		"--spool-dir", t.TempDir()}, extra...)...)
	return []review12Mode{{"store and forward", server}, {"proxy", proxy}}
}

// checkingModes is review12Modes with --size size and header and body
// checks that refuse "Subject: refuse-me" and a body line "refuse-body".
func checkingModes(t *testing.T, up *rawUpstream, size string) []review12Mode {
	dir := t.TempDir()
	hc := writeFile(t, dir, "header_checks", "/^Subject: refuse-me/ REJECT no thanks\n", 0o644)
	bc := writeFile(t, dir, "body_checks", "/^refuse-body/ REJECT not this body\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf("[policy]\nheader_checks = \"regexp:%s\"\nbody_checks = \"regexp:%s\"\n", hc, bc))
	return review12Modes(t, up.addr(), "--size", size, "--config", cfg)
}

// review12Mode is a relay in one of its modes, named.
type review12Mode struct {
	name string
	r    *relay
}

// inModes runs f for each mode, in parallel subtests of a subtest "modes"
// that ends when they all have.
func inModes(t *testing.T, modes []review12Mode, f func(t *testing.T, mode review12Mode)) {
	t.Run("modes", func(t *testing.T) {
		for _, mode := range modes {
			t.Run(mode.name, func(t *testing.T) {
				t.Parallel()
				f(t, mode)
			})
		}
	})
}

// dataCase is a message text as the client sends it after 354, final
// dot included, and where to cut it into separate TCP writes.
type dataCase struct {
	name string
	raw  string
}

func review12Cases() []dataCase {
	long := strings.Repeat("x", 1<<20)
	// Lines that start with a dot, of every length from 0 to 300,
	// so that dots and line ends fall on every buffer boundary the
	// relay's readers and writers have.
	var dots strings.Builder
	for i := range 1200 {
		dots.WriteString(".." + strings.Repeat("d", i%301) + "\r\n") // stuffed: the text has one dot
	}
	var crs strings.Builder
	for i := range 1200 {
		crs.WriteString(strings.Repeat("c", i%257) + "\r")
		if i%3 == 0 {
			crs.WriteString("\n.")
		}
	}
	cases := []dataCase{
		{"plain", review12Head + "body\r\n.\r\n"},
		{"only the final dot", ".\r\n"},
		{"one empty line", "\r\n.\r\n"},
		{"a line that is a dot", review12Head + "..\r\n.\r\n"},
		{"stuffed dots", review12Head + "...\r\n..x\r\n.y\r\n. \r\n.\r\n"},
		{"LF dot LF", review12Head + "a\n.\nMAIL FROM:<evil@example.org>\r\nb\r\n.\r\n"},
		{"CR dot CR", review12Head + "a\r.\rb\r\n.\r\n"},
		{"CRLF dot LF", review12Head + "a\r\n.\nb\r\n.\r\n"},
		{"LF dot CRLF", review12Head + "a\n.\r\nb\r\n.\r\n"},
		{"dot CR x", review12Head + "a\r\n.\rx\r\n.\r\n"},
		// CR CR LF holds a CRLF: the dot line after it ends the text, as
		// Postfix reads it (go-smtp's reader and net/textproto's did not
		// see that end: fbbcd22). TestBb10StrayCRBeforeFinalDot sends a
		// command after it.
		{"CR CR LF dot", review12Head + "a\r\r\n.\r\n"},
		{"CR CR CR LF", review12Head + "a\r\r\r\n.\r\n"},
		{"dot CR CR LF", review12Head + "a\r\n.\r\r\n.\r\n"},
		{"dot NUL", review12Head + "a\r\n.\x00\r\nb\r\n.\r\n"},
		{"NUL and 8-bit", review12Head + "\x00\xff\xfe\x80 caf\xc3\xa9\r\n\x00\r\n.\r\n"},
		{"no final line ending", review12Head + "last line\r\n.\r\n"},
		{"header only, no blank line", "Message-ID: <review12@e2e.test>\r\nDate: 5 Dec 2026 04:00:00 +0000\r\n.\r\n"},
		{"line of 1 MiB", review12Head + long + "\r\n.\r\n"},
		{"line of 1 MiB starting with a dot", review12Head + "." + long + "\r\n.\r\n"},
		{"dotted lines of every length", review12Head + dots.String() + ".\r\n"},
		{"bare CRs before dots", review12Head + crs.String() + "\r\n\r\n.\r\n"},
	}
	for _, c := range cases {
		// Each ends where the reference reading ends it, and only there.
		if _, rest, ok := refDataText([]byte(c.raw)); !ok || len(rest) > 0 {
			panic(fmt.Sprintf("case %q: end %v, %d octets after it", c.name, ok, len(rest)))
		}
	}
	return cases
}

// sendText runs one transaction whose text is sent in the pieces given,
// with a pause between them, and checks that no reply comes before the
// last piece and exactly one after it. It returns that reply.
//
// After each piece but the last two it only looks at what has arrived
// (a millisecond's wait); before the last piece it waits 20 ms for a
// reply, so a reply any earlier piece provoked has had at least those
// 20 ms to arrive, as when every piece was followed by a 20 ms wait.
// That made the test of a 1,000-piece text take twenty seconds.
func sendText(t *testing.T, addr, from string, pieces []string, pause time.Duration) reply {
	t.Helper()
	return sendTextTLS(t, addr, from, pieces, pause, false)
}

// sendTextTLS is sendText, after STARTTLS if withTLS.
func sendTextTLS(t *testing.T, addr, from string, pieces []string, pause time.Duration, withTLS bool) reply {
	t.Helper()
	c := mustDial(t, addr, "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	if withTLS {
		if err := c.startTLS(); err != nil {
			t.Fatalf("%s: STARTTLS: %v", from, err)
		}
		mustCmd(t, c, "250", "EHLO client.e2e.test")
	}
	mustCmd(t, c, "250", "MAIL FROM:<%s>", from)
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
	mustCmd(t, c, "354", "DATA")
	for i, p := range pieces {
		c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c.conn, p); err != nil {
			t.Fatalf("%s: write piece %d: %v", from, i, err)
		}
		if i < len(pieces)-1 {
			time.Sleep(pause)
			wait := time.Millisecond
			if i == len(pieces)-2 {
				wait = peekWait
			}
			if early := c.peekReplyWithin(wait); early != "" {
				t.Fatalf("%s: a reply before the final dot (after piece %d of %d): %q", from, i+1, len(pieces), early)
			}
		}
	}
	rep, err := c.read()
	if err != nil {
		t.Fatalf("%s: reply to the final dot: %v", from, err)
	}
	// Exactly one reply: the next one is NOOP's.
	if next, err := c.cmd("NOOP"); err != nil || len(next) != 1 || !strings.HasPrefix(next[0], "250 2.0.0 ") || strings.Contains(next[0], "queued") {
		t.Errorf("%s: after the reply to the final dot, NOOP = %q, %v; want NOOP's 250 (one reply per dot)", from, next, err)
	}
	return rep
}

// peekWait is how long peekReply waits for a reply.
const peekWait = 20 * time.Millisecond

// peekReply returns whatever the server has sent, waiting briefly.
func (c *smtpClient) peekReply() string { return c.peekReplyWithin(peekWait) }

// peekReplyWithin returns whatever the server has sent, waiting up to wait.
func (c *smtpClient) peekReplyWithin(wait time.Duration) string {
	c.conn.SetReadDeadline(time.Now().Add(wait))
	b, err := c.r.Peek(1)
	var ne net.Error
	if len(b) == 0 && (errors.As(err, &ne) && ne.Timeout()) {
		return ""
	}
	if err != nil && len(b) == 0 {
		return "<" + err.Error() + ">"
	}
	rep, _ := c.read()
	return rep.String()
}

// checkUpstreamText compares what the upstream read for from with what
// go-smtp's reader and the relay's line endings make of raw.
func checkUpstreamText(t *testing.T, up *rawUpstream, from, raw string) {
	t.Helper()
	text, ok := upstreamText(t, up, from)
	if !ok {
		return
	}
	ref, _, _ := refDataText([]byte(raw))
	sameText(t, from, withoutRelayFields(text), relayCRLF(ref), "the reference reading")
}

// upstreamText waits for the message from from at the upstream, checks
// what came over the wire (CRLF line endings only, no lone "." line) and
// returns the text unstuffed; ok is false, and the test failed, when no
// message came.
func upstreamText(t *testing.T, up *rawUpstream, from string) (text []byte, ok bool) {
	t.Helper()
	m, ok := up.waitFrom(from, 30*time.Second)
	if !ok {
		t.Errorf("%s: nothing reached the upstream", from)
		return nil, false
	}
	if dir := os.Getenv("REVIEW12_DUMP"); dir != "" {
		os.WriteFile(dir+"/"+strings.NewReplacer("/", "_", " ", "_").Replace(from), m.raw, 0o644)
	}
	text, problems := wireText(m.raw)
	for _, p := range problems {
		t.Errorf("%s: on the wire to the upstream: %s", from, p)
	}
	return text, true
}

// sameText fails the test, showing where, when the text the upstream got
// for from differs from want (which is what, in the message).
func sameText(t *testing.T, from string, got, want []byte, what string) {
	t.Helper()
	if i := firstDiffAt(got, want); i >= 0 {
		t.Errorf("%s: upstream text (%d octets) differs from %s (%d octets) at %d:\n got %s\nwant %s",
			from, len(got), what, len(want), i, around(got, i), around(want, i))
	}
}

// TestReview12DataText: every case, in one write, in both modes.
func TestReview12DataText(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	modes := review12Modes(t, up.addr(), "--size", "0")
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		var pending [][2]string
		defer func() {
			for _, p := range pending {
				checkUpstreamText(t, up, p[0], p[1])
			}
		}()
		for i, tc := range review12Cases() {
			from := fmt.Sprintf("case%d-%s@example.org", i, strings.ReplaceAll(mode.name, " ", "-"))
			rep := sendText(t, mode.r.addr(), from, []string{tc.raw}, 0)
			if rep.code() != 250 {
				t.Errorf("%s (%s): final reply %q; want 250", tc.name, from, rep)
				continue
			}
			pending = append(pending, [2]string{from, tc.raw})
		}
	})
	// Nothing but the messages sent: a look-alike that ended a text
	// early would show as a transaction of its own.
	time.Sleep(time.Second)
	for _, m := range up.messages() {
		if !strings.HasPrefix(m.from, "case") {
			t.Errorf("upstream transaction from <%s>: smuggled", m.from)
		}
	}
	if n := len(up.messages()); n != 2*len(review12Cases()) {
		t.Errorf("upstream got %d messages; want %d", n, 2*len(review12Cases()))
	}
}

// TestReview12DataSplit: the end of the text and its look-alikes cut into
// two TCP writes at every position, with a pause between them: no reply
// before the final dot, one after it, and the text as go-smtp reads it.
func TestReview12DataSplit(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	texts := []string{
		review12Head + "a\r\n..\r\n.\n.\r.\r\r\n.x\r\nb\r\n.\r\n",
		".\r\n",
		"\r\n.\r\n",
	}
	for _, mode := range review12Modes(t, up.addr()) {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var pending [][2]string
			defer func() {
				for _, p := range pending {
					checkUpstreamText(t, up, p[0], p[1])
				}
			}()
			for k, raw := range texts {
				start := 0
				if k == 0 {
					start = len(review12Head) - 2
				}
				for cut := max(start, 1); cut < len(raw); cut++ {
					from := fmt.Sprintf("split%d-%d-%s@example.org", k, cut, strings.ReplaceAll(mode.name, " ", "-"))
					rep := sendText(t, mode.r.addr(), from, []string{raw[:cut], raw[cut:]}, 60*time.Millisecond)
					if rep.code() != 250 {
						t.Errorf("%s: final reply %q; want 250", from, rep)
						continue
					}
					pending = append(pending, [2]string{from, raw})
				}
			}
			// Every octet of the end in a write of its own.
			raw := review12Head + "z\r\n.\r\n"
			var pieces []string
			pieces = append(pieces, raw[:len(raw)-6])
			for _, b := range raw[len(raw)-6:] {
				pieces = append(pieces, string(b))
			}
			from := "octets-" + strings.ReplaceAll(mode.name, " ", "-") + "@example.org"
			if rep := sendText(t, mode.r.addr(), from, pieces, 60*time.Millisecond); rep.code() != 250 {
				t.Errorf("%s: final reply %q; want 250", from, rep)
			} else {
				pending = append(pending, [2]string{from, raw})
			}
		})
	}
}

// TestReview12DataRandom: random texts of dots, CRs, LFs and letters,
// arriving in random pieces, compared with the reference reading.
func TestReview12DataRandom(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	const alphabet = "..\r\r\n\nab\x00\xff "
	var mu sync.Mutex
	for _, mode := range review12Modes(t, up.addr()) {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			rnd := rand.New(rand.NewPCG(seed, uint64(len(mode.name)))) // one per parallel subtest
			var pending [][2]string
			defer func() {
				for _, p := range pending {
					checkUpstreamText(t, up, p[0], p[1])
				}
			}()
			for i := range 60 {
				mu.Lock()
				var b []byte
				for range rnd.IntN(3000) {
					b = append(b, alphabet[rnd.IntN(len(alphabet))])
				}
				b = append(b, "\r\n\r\n.\r\n"...) // an end from any state
				raw := review12Head + string(b)
				// The text go-smtp reads ends at the first end
				// marker; what follows would be commands.
				_, rest, _ := refDataText([]byte(raw))
				raw = raw[:len(raw)-len(rest)]
				var pieces []string
				for p := raw; len(p) > 0; {
					n := min(len(p), 1+rnd.IntN(700))
					pieces = append(pieces, p[:n])
					p = p[n:]
				}
				mu.Unlock()
				from := fmt.Sprintf("random%d-%s@example.org", i, strings.ReplaceAll(mode.name, " ", "-"))
				rep := sendText(t, mode.r.addr(), from, pieces, 2*time.Millisecond)
				if rep.code() != 250 {
					t.Errorf("%s: final reply %q; want 250", from, rep)
					continue
				}
				pending = append(pending, [2]string{from, raw})
			}
		})
	}
}

// stampedHeader is what the relay's header stamp makes of CRLF text: the
// Message-ID and Date fields it lacks go at the end of its header
// section, before the first line that is not a header field (with a blank
// line first if that line is not blank), or at the end of a text that is
// all header. Added fields are written as "Message-ID: <STAMP>" and
// "Date: STAMP".
func stampedHeader(text []byte) []byte {
	msgID, date := false, false
	added := func() []byte {
		var b []byte
		if !msgID {
			b = append(b, "Message-ID: <STAMP>\r\n"...)
		}
		if !date {
			b = append(b, "Date: STAMP\r\n"...)
		}
		return b
	}
	for pos := 0; pos < len(text); {
		end := bytes.Index(text[pos:], []byte("\r\n"))
		if end < 0 {
			break
		}
		line := text[pos : pos+end+2]
		isHeader := false
		if line[0] == ' ' || line[0] == '\t' {
			isHeader = len(bytes.TrimSpace(line)) > 0
		} else if name, _, ok := bytes.Cut(line, []byte(":")); ok && len(name) > 0 {
			isHeader = !bytes.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f })
			msgID = msgID || bytes.EqualFold(name, []byte("Message-ID"))
			date = date || bytes.EqualFold(name, []byte("Date"))
		}
		if !isHeader {
			out := append(append([]byte(nil), text[:pos]...), added()...)
			if len(line) > 2 {
				out = append(out, "\r\n"...)
			}
			return append(out, text[pos:]...)
		}
		pos += end + 2
	}
	return append(append([]byte(nil), text...), added()...)
}

var (
	relayMsgIDRE = regexp.MustCompile(`(?m)^Message-ID: <\d{14}\.[^@>\s]+@[^>\s]*>\r\n`)
	relayDateRE  = regexp.MustCompile(`(?m)^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n`)
)

// TestReview12HeaderStamp: the Message-ID and Date the relay adds to a
// message that lacks them go at the end of its header section, however
// the header arrives in pieces, and the rest is untouched.
func TestReview12HeaderStamp(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	longField := "X-Long: " + strings.Repeat("h", 100<<10) + "\r\n"
	cases := []struct{ name, text string }{
		{"plain", "Subject: a\r\nFrom: <b@example.org>\r\n\r\nbody\r\n"},
		{"folded", "Subject: a\r\n  folded\r\n\tmore\r\nX: y\r\n\r\nbody\r\n"},
		{"no blank line", "Subject: a\r\nbody line without colon\r\nmore\r\n"},
		{"header only", "Subject: a\r\nX: b\r\n"},
		{"has a Message-Id", "message-id: <x@e2e.test>\r\nSubject: a\r\n\r\nb\r\n"},
		{"has a Date", "DATE: 5 Dec 2026 04:00:00 +0000\r\nSubject: a\r\n\r\nb\r\n"},
		{"Message-ID in the body", "Subject: a\r\n\r\nMessage-ID: <x@e2e.test>\r\nDate: 1 Jan 2026 00:00:00 +0000\r\n"},
		{"starts blank", "\r\nbody\r\n"},
		{"starts with a body line", "body line\r\n"},
		{"long field", "Subject: long\r\n" + longField + longField + "\r\nbody\r\n"},
		{"colon-less line after folding", "Subject: a\r\n b\r\nnot a field\r\n\r\nbody\r\n"},
		{"space in a field name", "Subject: a\r\nBad Name: x\r\n\r\nbody\r\n"},
	}
	modes := review12Modes(t, up.addr(), "--size", "0")
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(len(mode.name)))) // one per parallel subtest
		var sent [][2]string
		for i, tc := range cases {
			for _, piece := range []int{0, 1, 7, 4096} {
				raw := tc.text + ".\r\n"
				var pieces []string
				for p := raw; len(p) > 0; {
					n := len(p)
					if piece > 0 {
						n = min(len(p), 1+rnd.IntN(piece))
					}
					if len(pieces) > 200 {
						n = len(p)
					}
					pieces = append(pieces, p[:n])
					p = p[n:]
				}
				from := fmt.Sprintf("stamp%d-%d-%s@example.org", i, piece, strings.ReplaceAll(mode.name, " ", "-"))
				if rep := sendText(t, mode.r.addr(), from, pieces, time.Millisecond); rep.code() != 250 {
					t.Errorf("%s: %q", from, rep)
					continue
				}
				sent = append(sent, [2]string{from, tc.text})
			}
		}
		for _, s := range sent {
			text, ok := upstreamText(t, up, s[0])
			if !ok {
				continue
			}
			text = withoutReceived(text)
			text = relayMsgIDRE.ReplaceAll(text, []byte("Message-ID: <STAMP>\r\n"))
			text = relayDateRE.ReplaceAll(text, []byte("Date: STAMP\r\n"))
			sameText(t, s[0], text, stampedHeader([]byte(s[1])), "the client's text with the relay's stamps")
		}
	})
}

// TestReview12Pipelined: the next transaction written right behind the
// final dot, in the same TCP write, after a large text and a small one,
// with BDAT transactions (BDAT 0 LAST, a chunk holding an end-of-data
// look-alike and bare line endings) and RSET and NOOP in between: each
// command gets its reply in order, and each message reaches the upstream
// whole and correctly stuffed.
func TestReview12Pipelined(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	big := review12Head + strings.Repeat(".dotted line of text, stuffed by the client\r\n", 3000)
	stuff := func(s string) string { return strings.ReplaceAll("\r\n"+s, "\r\n.", "\r\n..")[2:] }
	modes := review12Modes(t, up.addr(), "--size", "0")
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		m := strings.ReplaceAll(mode.name, " ", "-")
		c := mustDial(t, mode.r.addr(), "127.0.0.1")
		defer c.Close()
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<p1-%s@example.org>", m)
		mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
		mustCmd(t, c, "354", "DATA")
		bdat := "a\r\n.\r\nMAIL FROM:<evil@example.org>\r\nbare\nLF and bare\rCR\r\n"
		write := stuff(big) + ".\r\n" +
			"MAIL FROM:<p2-" + m + "@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n"
		c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c.conn, write); err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"250 ", "250 ", "250 ", "354 "} {
			if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), want) {
				t.Fatalf("reply %d = %q, %v; want %q", i, rep, err, want)
			}
		}
		write = review12Head + "small\r\n.\r\nRSET\r\nNOOP\r\n" +
			"MAIL FROM:<p3-" + m + "@example.org>\r\nRCPT TO:<bob@example.net>\r\nBDAT 0 LAST\r\n" +
			"MAIL FROM:<p4-" + m + "@example.org>\r\nRCPT TO:<bob@example.net>\r\n" +
			fmt.Sprintf("BDAT %d\r\n%s", len(review12Head), review12Head) +
			fmt.Sprintf("BDAT %d LAST\r\n%s", len(bdat), bdat) + "NOOP\r\n"
		if _, err := io.WriteString(c.conn, write); err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"250 ", "250 ", "250 ", "250 ", "250 ", "250 ", "250 ", "250 ", "250 ", "250 ", "250 "} {
			if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), want) {
				t.Fatalf("second write, reply %d = %q, %v; want %q", i, rep, err, want)
			}
		}
		if rep := c.peekReply(); rep != "" {
			t.Errorf("a reply too many: %q", rep)
		}
		for _, w := range []struct{ from, raw string }{
			{"p1", stuff(big) + ".\r\n"},
			{"p2", review12Head + "small\r\n.\r\n"},
		} {
			checkUpstreamText(t, up, w.from+"-"+m+"@example.org", w.raw)
		}
		for _, w := range []struct{ from, text string }{
			{"p3", ""},
			{"p4", review12Head + bdat},
		} {
			from := w.from + "-" + m + "@example.org"
			if text, ok := upstreamText(t, up, from); ok {
				sameText(t, from, withoutRelayFields(text), relayCRLF([]byte(w.text)), "the BDAT chunks")
			}
		}
	})
	time.Sleep(time.Second)
	for _, m := range up.messages() {
		if strings.HasPrefix(m.from, "evil") {
			t.Errorf("a smuggled transaction reached the upstream")
		}
	}
}

// TestReview12GoneMidData: a client that disconnects in the middle of the
// text, and one that sends it one octet every 300 ms (slower than any
// block, faster than the idle timeout): the first leaves nothing behind,
// upstream or queued; the second is accepted whole.
func TestReview12GoneMidData(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	modes := review12Modes(t, up.addr(), "--idle-timeout", "2")
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		m := strings.ReplaceAll(mode.name, " ", "-")
		for _, cut := range []string{review12Head + "half a li", review12Head + "line\r\n.", review12Head + "line\r\n.\r"} {
			c := mustDial(t, mode.r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			mustCmd(t, c, "250", "MAIL FROM:<gone-%s@example.org>", m)
			mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
			mustCmd(t, c, "354", "DATA")
			io.WriteString(c.conn, cut)
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
		raw := review12Head + "slow\r\n.\r\n"
		var pieces []string
		for i := range raw {
			if i < len(review12Head) {
				continue
			}
			pieces = append(pieces, raw[i:i+1])
		}
		pieces[0] = review12Head + pieces[0]
		from := "slow-" + m + "@example.org"
		if rep := sendText(t, mode.r.addr(), from, pieces, 300*time.Millisecond); rep.code() != 250 {
			t.Errorf("slow client: %q; want 250", rep)
		} else {
			checkUpstreamText(t, up, from, raw)
		}
	})
	time.Sleep(2 * time.Second)
	for _, msg := range up.messages() {
		if strings.HasPrefix(msg.from, "gone") {
			t.Errorf("a message cut short reached the upstream: %q", msg.raw)
		}
	}
	for _, mode := range modes {
		if ids := messageIDs(t, mode.r.spool); len(ids) > 0 {
			t.Errorf("%s: messages left in the spool: %v", mode.name, ids)
		}
	}
}

// TestReview12DataTLS: the texts and a split end again, over STARTTLS,
// where the command layer reads through TLS records.
func TestReview12DataTLS(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	_, _, pem := certFiles(t, t.TempDir())
	modes := review12Modes(t, up.addr(), "--size", "0", "--server-tls", "--server-tls-certificate", pem)
	split := review12Head + "a\r\n..\r\n.\n.\r.\r\r\n.x\r\nb\r\n.\r\n"
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		m := strings.ReplaceAll(mode.name, " ", "-")
		var pending [][2]string
		for i, tc := range review12Cases() {
			from := fmt.Sprintf("tls%d-%s@example.org", i, m)
			if rep := sendTextTLS(t, mode.r.addr(), from, []string{tc.raw}, 0, true); rep.code() != 250 {
				t.Errorf("%s (%s): final reply %q; want 250", tc.name, from, rep)
				continue
			}
			pending = append(pending, [2]string{from, tc.raw})
		}
		for cut := len(review12Head) - 2; cut < len(split); cut++ {
			from := fmt.Sprintf("tlssplit%d-%s@example.org", cut, m)
			if rep := sendTextTLS(t, mode.r.addr(), from, []string{split[:cut], split[cut:]}, 40*time.Millisecond, true); rep.code() != 250 {
				t.Errorf("%s: final reply %q; want 250", from, rep)
				continue
			}
			pending = append(pending, [2]string{from, split})
		}
		for _, p := range pending {
			checkUpstreamText(t, up, p[0], p[1])
		}
	})
}

// TestReview12SizeDots: --size counts the message text as the client
// meant it, dot-unstuffed: a text of exactly the limit made of lines that
// start with a dot (stuffed on the wire, so more octets arrive), or of
// bare-LF lines, is accepted; one octet more is refused with 552 5.3.4
// after the final dot, and the session goes on.
func TestReview12SizeDots(t *testing.T) {
	t.Parallel()
	const limit = 10000
	up := newRawUpstream(t)
	modes := review12Modes(t, up.addr(), "--size", fmt.Sprint(limit))
	// text returns n octets of text whose lines start with a dot (or end
	// in a bare LF), final line ending included.
	text := func(n int, lf bool) string {
		var b strings.Builder
		for b.Len() < n {
			line := ".dotted\r\n"
			if lf {
				line = "bare-lf\n"
			}
			if n-b.Len() < 2*len(line) {
				line = strings.Repeat("x", n-b.Len()-2) + "\r\n"
			}
			b.WriteString(line)
		}
		return b.String()
	}
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		for _, lf := range []bool{false, true} {
			for _, n := range []int{limit, limit + 1} {
				txt := text(n, lf)
				if len(txt) != n {
					t.Fatalf("text of %d octets, want %d", len(txt), n)
				}
				stuffed := strings.ReplaceAll("\r\n"+txt, "\r\n.", "\r\n..")[2:] + ".\r\n"
				from := fmt.Sprintf("size%d-%v-%s@example.org", n, lf, strings.ReplaceAll(mode.name, " ", "-"))
				rep := sendText(t, mode.r.addr(), from, []string{stuffed}, 0)
				want := "250 "
				if n > limit {
					want = "552 5.3.4 "
				}
				if !strings.HasPrefix(rep.String(), want) {
					t.Errorf("%s: %d octets of text (%d on the wire), --size %d: %q; want %q", from, n, len(stuffed), limit, rep, want+"...")
				}
			}
		}
	})
}

// TestReview12FilteredTextStuffing: a filter may leave any octets in the
// content file (bare LFs, bare CRs, CR CR LF, lines of a lone dot, no
// final line ending). The relay's DATA writer to the upstream must send
// exactly what net/textproto's DotWriter (which it replaced) makes of that
// content with its line endings made CRLF by crlf's rule (a bare CR ends
// a line, so that "<CR>.<CR><LF>" never reaches the upstream:
// TestBb28FilterBareCRNotForwarded), in both modes, at every buffer
// boundary: the filter here puts in place a content chosen by the
// sender's name.
func TestReview12FilteredTextStuffing(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	dir := t.TempDir()
	filt := script(t, "replace", `from=$(sed -n 's/^X-MailRelay-From: //p' "$2" | tr -d '\r')
cp "`+dir+`/${from%%@*}" "$1.tmp" && mv "$1.tmp" "$1"
`)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const alphabet = "...\r\r\n\n\nabcdefgh \x00\xff"
	contents := map[string][]byte{
		"fixed0": []byte("a\n.\nb\r.\r\nc\r\r\n.\r\r\n..\n\r\n.\rx\r\nlast"),
		"fixed1": []byte(".\r\n"),
		"fixed2": []byte("\r"),
		"fixed3": []byte("\n.\n"),
	}
	for i := range 24 {
		var b []byte
		n := rnd.IntN(200 << 10)
		for len(b) < n {
			if rnd.IntN(50) == 0 {
				b = append(b, strings.Repeat("x", rnd.IntN(20000))...)
			}
			b = append(b, alphabet[rnd.IntN(len(alphabet))])
		}
		contents[fmt.Sprintf("random%d", i)] = b
	}
	for name, b := range contents {
		if err := os.WriteFile(dir+"/"+name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	modes := review12Modes(t, up.addr(), "--size", "0", "--filter", filt)
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		m := strings.ReplaceAll(mode.name, " ", "-")
		for name := range contents {
			mustSend(t, mode.r.addr(), name+"@"+m+".example.org", []string{"bob@example.net"}, message(name))
		}
		for name, b := range contents {
			msg, ok := up.waitFrom(name+"@"+m+".example.org", 30*time.Second)
			if !ok {
				t.Errorf("%s: not delivered", name)
				continue
			}
			var want bytes.Buffer
			bw := bufio.NewWriter(&want)
			dw := textproto.NewWriter(bw).DotWriter()
			dw.Write(crlf.Bytes(b))
			dw.Close()
			bw.Flush()
			got := append(append([]byte(nil), msg.raw...), ".\r\n"...)
			if i := firstDiffAt(got, want.Bytes()); i >= 0 {
				t.Errorf("%s (%d octets): the upstream read other octets than textproto's DotWriter sends, at %d:\n got %s\nwant %s",
					name, len(b), i, around(got, i), around(want.Bytes(), i))
			}
		}
	})
}

// TestReview12EightBit: one octet with the high bit set, at every offset
// of the first 40 of the body and near its end, makes the relay forward
// the message with BODY=8BITMIME (store and forward, where the relay
// judges the content; the proxy passes on what the client declared), and
// plain ASCII does not.
func TestReview12EightBit(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-to", up.addr(),
		"--poll", "1", "--spool-dir", t.TempDir())
	body := strings.Repeat("0123456789abcdef", 8) + "\r\n"
	var sent []string
	for _, off := range []int{-1, 0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 39, 40, 63, 64, 65, 127, 128} {
		text := []byte(body)
		if off >= 0 && off < len(body)-2 {
			text[off] = 0xe9
		}
		raw := review12Head + string(text) + ".\r\n"
		from := fmt.Sprintf("eight%d@example.org", off)
		if rep := sendText(t, r.addr(), from, []string{raw}, 0); rep.code() != 250 {
			t.Fatalf("%s: %q", from, rep)
		}
		sent = append(sent, from)
	}
	for _, from := range sent {
		m, ok := up.waitFrom(from, 30*time.Second)
		if !ok {
			t.Errorf("%s: not delivered", from)
			continue
		}
		eight := bytes.ContainsFunc(m.raw, func(r rune) bool { return r >= 0x80 || r == utf8.RuneError })
		declared := strings.Contains(strings.ToUpper(m.mail), "BODY=8BITMIME")
		if eight != declared {
			t.Errorf("%s: 8-bit content %v, MAIL %q: BODY=8BITMIME %v", from, eight, m.mail, declared)
		}
	}
}

// TestReview12RefusedEarly: header and body checks refuse a message as
// soon as they see it (the header's first field, a body line), while the
// client is still sending a large text in pieces; the client hears one
// refusal after its final dot, none before, the session goes on, and the
// message with the same text but nothing to refuse goes through whole
// (the checks read the text through a pipe, with the relay's added
// fields).
func TestReview12RefusedEarly(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	modes := checkingModes(t, up, "0")
	body := strings.Repeat("..a dotted line of body text, stuffed\r\nplain line\r\n", 5000)
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		m := strings.ReplaceAll(mode.name, " ", "-")
		for _, tc := range []struct{ name, head, first, want string }{
			{"header", "Subject: refuse-me\r\n", "", "550 5.7.1 no thanks"},
			{"body", "Subject: fine\r\n", "refuse-body\r\n", "550 5.7.1 not this body"},
			{"nothing", "Subject: fine\r\n", "fine body\r\n", "250 "},
		} {
			raw := "Message-ID: <x@e2e.test>\r\nDate: 5 Dec 2026 04:00:00 +0000\r\n" + tc.head + "\r\n" + tc.first + body + ".\r\n"
			third := len(raw) / 3
			from := "early-" + tc.name + "-" + m + "@example.org"
			rep := sendText(t, mode.r.addr(), from, []string{raw[:third], raw[third : 2*third], raw[2*third:]}, 300*time.Millisecond)
			if !strings.HasPrefix(rep.String(), tc.want) {
				t.Errorf("%s: %q; want %q", tc.name, rep, tc.want+"...")
			}
			if tc.want == "250 " {
				checkUpstreamText(t, up, from, raw)
			}
		}
	})
}

// TestReview12ConcurrentIntegrity: many sessions at once, in both modes,
// mixing messages refused part way (header and body checks, over --size),
// clients that vanish in the middle of their text, and good messages with
// random texts of up to 200 KB: every good message reaches the upstream
// octet for octet. The relay now reuses its buffers from message to
// message (spool write buffers, copy buffers, the proxy's chunks); one
// handed back while still in use would show here as another message's
// octets.
func TestReview12ConcurrentIntegrity(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	modes := checkingModes(t, up, "300000")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	inModes(t, modes, func(t *testing.T, mode review12Mode) {
		m := strings.ReplaceAll(mode.name, " ", "-")
		var mu sync.Mutex
		good := map[string]string{}
		var wg sync.WaitGroup
		for cl := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(seed, uint64(cl)))
				for k := range 12 {
					var b strings.Builder
					for b.Len() < rnd.IntN(200<<10) {
						line := make([]byte, rnd.IntN(120))
						for i := range line {
							line[i] = byte('!' + rnd.IntN(90))
						}
						b.Write(line)
						b.WriteString("\r\n")
					}
					from := fmt.Sprintf("int-%d-%d-%s@example.org", cl, k, m)
					kind := rnd.IntN(5)
					head := "Message-ID: <" + from + ">\r\nDate: 5 Dec 2026 04:00:00 +0000\r\nSubject: "
					var raw string
					switch kind {
					case 0:
						raw = head + "refuse-me\r\n\r\n" + b.String()
					case 1:
						raw = head + "x\r\n\r\nrefuse-body\r\n" + b.String()
					case 2:
						raw = head + "big\r\n\r\n" + strings.Repeat("y", 300001) + "\r\n"
					default:
						raw = head + "good\r\n\r\n" + b.String()
					}
					stuffed := strings.ReplaceAll("\r\n"+raw, "\r\n.", "\r\n..")[2:] + ".\r\n"
					c, _, err := dialFrom(mode.r.addr(), "127.0.0.1")
					if err != nil {
						t.Error(err)
						return
					}
					c.cmd("EHLO c.e2e.test")
					c.cmd("MAIL FROM:<%s>", from)
					c.cmd("RCPT TO:<bob@example.net>")
					c.cmd("DATA")
					if kind == 4 && k%3 == 0 {
						// Gone in the middle.
						io.WriteString(c.conn, stuffed[:len(stuffed)/2])
						c.Close()
						continue
					}
					c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
					io.WriteString(c.conn, stuffed)
					rep, err := c.read()
					c.Close()
					if kind >= 3 {
						if err != nil || rep.code() != 250 {
							t.Errorf("%s: %q, %v; want 250", from, rep, err)
							continue
						}
						mu.Lock()
						good[from] = stuffed
						mu.Unlock()
					} else if err != nil || rep.code()/100 != 5 {
						t.Errorf("%s (kind %d): %q, %v; want a refusal", from, kind, rep, err)
					}
				}
			}()
		}
		wg.Wait()
		for from, raw := range good {
			checkUpstreamText(t, up, from, raw)
		}
	})
	time.Sleep(time.Second)
	for _, msg := range up.messages() {
		if !strings.Contains(string(msg.raw), "Subject: good\r\n") {
			t.Errorf("<%s>: a message that was refused or cut short reached the upstream", msg.from)
		}
	}
}
