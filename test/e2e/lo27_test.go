package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestLo27ClientFilterDiesWithRelay: a client filter (--client-filter)
// that prepends a header is asleep when the relay is killed (kill -9).
// After the restart the message, put back as it was accepted, goes
// through the filter once more; the first run must not wake up and edit
// it too: the upstream must see the header once.
func TestLo27ClientFilterDiesWithRelay(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	started := filepath.Join(t.TempDir(), "started")
	edit := script(t, "edit", `touch '`+started+`'
sleep 3
{ printf 'X-Lo27: edited\r\n'; cat "$1"; } > "$1.tmp" && mv "$1.tmp" "$1"
exit 0
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--client-filter", edit, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("edit once"))
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(started); return err == nil }) {
		t.Fatal("the client filter did not start within 10 s")
	}
	r.kill()
	r.restart()
	tx := sink.WaitTransactions(t, 1, 20*time.Second)[0]
	time.Sleep(3 * time.Second) // the first run's sleep over, had it lived
	if n := strings.Count(string(tx.Data), "X-Lo27: edited"); n != 1 {
		t.Errorf("the upstream got the filter's header %d times; want once:\n%s", n, tx.Data)
	}
	if n := len(sink.Transactions()); n != 1 {
		t.Errorf("the upstream saw %d transactions; want 1", n)
	}
	if names := lo27Files(t, spool, ".tmp"); len(names) > 0 {
		t.Errorf("the spool holds %v; want no temporary file", names)
	}
}

// TestLo27ServerFilterTempRemoved: a --filter that writes "$1.tmp" (as
// E-MailRelay's guide's scripts do) is killed with the relay before its
// mv. The message was never acknowledged; after the restart nothing of it
// may be left in the spool, its ID.content.tmp neither.
func TestLo27ServerFilterTempRemoved(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	f := script(t, "slow", `cat "$1" > "$1.tmp"
sleep 3
mv "$1.tmp" "$1"
exit 0
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", f, "--interface", "127.0.0.1", "--spool-dir", spool)
	done := make(chan error, 1)
	go func() {
		_, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("killed in its filter"))
		done <- err
	}()
	if !waitFor(10*time.Second, func() bool { return len(lo27Files(t, spool, ".content.tmp")) == 1 }) {
		t.Fatal("the filter wrote no ID.content.tmp within 10 s")
	}
	r.kill()
	<-done
	r.restart()
	time.Sleep(4 * time.Second) // the filter's sleep over, had it lived
	if names := lo27Files(t, spool, ".tmp"); len(names) > 0 {
		t.Errorf("after the restart the spool holds %v; want no filter temporary file", names)
	}
	if ids := messageIDs(t, spool); len(ids) > 0 {
		t.Errorf("after the restart the spool holds messages %v; want none (never acknowledged)", ids)
	}
}

// lo27Files lists the names in dir that end in suffix.
func lo27Files(t *testing.T, dir, suffix string) []string {
	t.Helper()
	des, _ := os.ReadDir(dir)
	var out []string
	for _, d := range des {
		if strings.HasSuffix(d.Name(), suffix) {
			out = append(out, d.Name())
		}
	}
	return out
}

// TestLo27BdatChunkOverSize: RFC 3030 section 2: the BDAT chunk that
// takes the message past the size limit (--size) is answered 552, not the
// next one; the transaction ends with it (a later BDAT hears 503), each
// command gets one reply, in order, even pipelined, and nothing of the
// message stays in the spool. A message of exactly the limit is taken.
func TestLo27BdatChunkOverSize(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--size", "1000", "--interface", "127.0.0.1", "--spool-dir", spool)
	chunk := func(n int) string { return strings.Repeat("a", n-2) + "\r\n" }
	for _, tc := range []struct {
		sizes []int
		want  []string // reply codes, one a BDAT, then the NOOP's
	}{
		{[]int{600, 600, 10}, []string{"250", "552", "503", "250"}},
		{[]int{1200, 10}, []string{"552", "503", "250"}},
		{[]int{600, 401}, []string{"250", "552", "250"}},
		{[]int{999, 2}, []string{"250", "552", "250"}},
		{[]int{600, 400}, []string{"250", "250", "250"}},
		{[]int{1000}, []string{"250", "250"}},
	} {
		t.Run(fmt.Sprint(tc.sizes), func(t *testing.T) {
			c := mustDial(t, r.addr(), "127.0.0.1")
			defer c.Close()
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
			mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
			var b strings.Builder
			for i, n := range tc.sizes {
				last := ""
				if i == len(tc.sizes)-1 {
					last = " LAST"
				}
				fmt.Fprintf(&b, "BDAT %d%s\r\n%s", n, last, chunk(n))
			}
			b.WriteString("NOOP\r\n") // pipelined, all in one write
			c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c.conn, b.String()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for range tc.want {
				rep, err := c.read()
				if err != nil {
					t.Fatalf("replies so far %v, then %v; want %v", got, err, tc.want)
				}
				got = append(got, rep.String())
			}
			for i, g := range got {
				if !strings.HasPrefix(g, tc.want[i]) {
					t.Errorf("replies %q; want codes %v", got, tc.want)
					break
				}
			}
			if i := slices.Index(tc.want, "552"); i >= 0 && got[i] != "552 5.3.4 Maximum message size exceeded" {
				t.Errorf("the refusal = %q; want 552 5.3.4 Maximum message size exceeded", got[i])
			}
			if rep, err := c.cmd("QUIT"); err != nil || !strings.HasPrefix(rep.String(), "221 ") {
				t.Errorf("QUIT = %q, %v; want 221 (another reply first is one too many)", rep, err)
			}
		})
	}
	if ids := messageIDs(t, spool); len(ids) != 2 {
		t.Errorf("the spool holds %d messages; want the 2 within the limit", len(ids))
	}
}

// TestLo27UTF8RecipientNoSMTPUTF8Upstream: a message sent with SMTPUTF8
// to a UTF-8 recipient, forwarded to an upstream that offers no SMTPUTF8,
// fails at once with 5.6.7, as Postfix's does ("SMTPUTF8 is required,
// but was not offered"). Its DSN must name the address as the cause (it
// blamed the message's UTF-8 header fields: the relay's own Received
// field, which names the recipient), and must be deliverable through the
// same upstream: a null sender without SMTPUTF8, an ASCII header section
// and, toward an upstream without 8BITMIME either, 7-bit text.
func TestLo27UTF8RecipientNoSMTPUTF8Upstream(t *testing.T) {
	t.Parallel()
	for _, caps := range [][]string{
		{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"},
		{"PIPELINING", "ENHANCEDSTATUSCODES"},
	} {
		for _, rcpt := range []string{"jöran@example.net", "user@bücher.example"} {
			t.Run(fmt.Sprint(len(caps), rcpt), func(t *testing.T) {
				t.Parallel()
				up := harness.NewFakeSMTP(t, harness.Script{Capabilities: caps})
				r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1",
					"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
				_, final := opsSend(t, r.addr(), "client.test", "<alice@example.org> SMTPUTF8", []string{"<" + rcpt + ">"}, "Subject: hi\n\nhello\n")
				if final.code() != 250 {
					t.Fatalf("final reply %q; want 250", final)
				}
				tx := up.WaitTransactions(t, 1, 20*time.Second)[0]
				if tx.MailFrom != "" || len(tx.Rcpts) != 1 || tx.Rcpts[0].Addr != "alice@example.org" {
					t.Fatalf("the upstream got MAIL <%s> RCPT %v; want the DSN, <> to alice@example.org", tx.MailFrom, tx.Rcpts)
				}
				if strings.Contains(tx.MailParams, "SMTPUTF8") || !tx.Accepted() {
					t.Errorf("the DSN went with %q, reply %q; want no SMTPUTF8, and taken", tx.MailParams, tx.Reply)
				}
				data := string(tx.Data)
				head, _, _ := strings.Cut(data, "\r\n\r\n")
				if !lo27ASCII(head) {
					t.Errorf("the DSN's header section is not ASCII:\n%s", head)
				}
				if len(caps) == 2 && !lo27ASCII(data) {
					t.Errorf("the DSN toward an upstream without 8BITMIME is not 7-bit:\n%s", data)
				}
				if !strings.Contains(data, "which this address needs") || strings.Contains(data, "header fields need") {
					t.Errorf("the DSN does not name the address as the cause:\n%s", data)
				}
				if n := len(up.Transactions()); n != 1 {
					t.Errorf("the upstream saw %d transactions; want the DSN alone", n)
				}
			})
		}
	}
}

func lo27ASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
