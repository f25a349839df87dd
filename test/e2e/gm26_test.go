package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gm26SendBDAT is sendFrom with the message sent in two BDAT chunks
// (RFC 3030), the second one LAST, instead of DATA: the reply to BDAT
// LAST is the transaction's Final.
func gm26SendBDAT(addr, ip, from string, to []string, body string) (transaction, error) {
	c, greet, err := dialFrom(addr, ip)
	tx := transaction{Greeting: greet}
	if err != nil {
		return tx, err
	}
	defer c.Close()
	if greet.code() != 220 {
		return tx, errRefused
	}
	if tx.Ehlo, err = c.cmd("EHLO client.e2e.test"); err != nil {
		return tx, err
	}
	if tx.Mail, err = c.cmd("MAIL FROM:<%s>", from); err != nil || tx.Mail.code() != 250 {
		return tx, err
	}
	accepted := 0
	for _, a := range to {
		rep, err := c.cmd("RCPT TO:<%s>", a)
		tx.Rcpt = append(tx.Rcpt, rep)
		if err != nil {
			return tx, err
		}
		if rep.code()/100 == 2 {
			accepted++
		}
	}
	if accepted == 0 {
		c.cmd("QUIT")
		return tx, nil
	}
	msg := strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	half := strings.Index(msg, "\r\n\r\n") + 4
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte("BDAT " + strconv.Itoa(half) + "\r\n" + msg[:half])); err != nil {
		return tx, err
	}
	if tx.Data, err = c.read(); err != nil || tx.Data.code() != 250 {
		return tx, err
	}
	rest := msg[half:]
	if _, err := c.conn.Write([]byte("BDAT " + strconv.Itoa(len(rest)) + " LAST\r\n" + rest)); err != nil {
		return tx, err
	}
	tx.Final, err = c.read()
	c.cmd("QUIT")
	return tx, err
}

// TestGM26EveryReplyAfterBDAT: every reply of gmail-replies.md given by
// the fake Gmail where Gmail gives it, to clients that send their message
// in BDAT chunks (CHUNKING, RFC 3030) rather than with DATA, through a
// relay that stores and forwards and through a proxy, welcomelisted or
// not: each gets its verdict's action (TestRevPFE3RelayEveryReply's
// checks), the proxy's refusal at the final chunk read as one after the
// content.
func TestGM26EveryReplyAfterBDAT(t *testing.T) {
	t.Parallel()
	relayEveryReplyBy(t, pfe3Replies(t), gm26SendBDAT)
}

// TestGM26CompanionPostfixLogrotate: Postfix's own rotation of its
// maillog_file ("postfix logrotate": the file renamed to
// maillog.YYYYMMDD-HHMMSS, then compressed with gzip, the uncompressed
// file removed) between a message's client= line and Gmail's refusal of
// it: postfix-enforcer, following, bans the client all the same; and one
// stopped in the middle (before the rotation and the refusal) and started
// again when the old file is gone (compressed) bans it too, from what its
// state kept of the old file.
func TestGM26CompanionPostfixLogrotate(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", MaxStall: 30 * time.Second,
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage != harness.StageEndOfData {
				return harness.Response{}
			}
			return harness.Response{Delay: 4 * time.Second, Reply: companionMessages[0].reply}
		}})
	pf := companionPostfix(t, gmail.Addr())
	dir := t.TempDir()
	wl := writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644)
	banLog := filepath.Join(dir, "bans.log")
	args := append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"), wl, banLog, pf.Addr()),
		"--trusted-upstream", "127.0.0.1")
	rotate := func() {
		t.Helper()
		out, err := exec.Command("postfix", "-c", pf.ConfigDir(), "logrotate").CombinedOutput()
		if err != nil {
			t.Fatalf("postfix logrotate: %v\n%s", err, out)
		}
	}
	send := func(ip, to string) {
		t.Helper()
		m := companionMessages[0]
		m.ip, m.to = ip, to
		compSend(t, pf.Addr(), m)
	}

	// 1. Following across the rotation.
	f := harness.Start(t, harness.Binary(t), append([]string{"postfix-enforcer", "-d"}, args...)...)
	compWait(t, 30*time.Second, "the follower to start", func() bool { return strings.Contains(f.Stderr(), "postfix-enforcer started") })
	time.Sleep(500 * time.Millisecond)
	send("203.0.113.31", "spam@gmail.test")
	rotate()
	compWait(t, 40*time.Second, "a ban line for 203.0.113.31", func() bool {
		b, _ := os.ReadFile(banLog)
		return bytes.Contains(b, []byte(" 203.0.113.31\n"))
	})

	// 2. Stopped after the rotation, started again after the refusal.
	send("203.0.113.32", "spam2@gmail.test")
	compWait(t, 10*time.Second, "the follower to read the message's lines", func() bool {
		return strings.Count(f.Stderr(), "kind=queued") >= 2
	})
	f.Signal(syscall.SIGTERM)
	if code, err := f.Wait(20 * time.Second); code != 0 || err != nil {
		t.Fatalf("follower: exit %d, %v\nstderr:\n%s", code, err, f.Stderr())
	}
	t.Logf("postfix-enforcer (following):\n%s\nstderr:\n%s", f.Stdout(), f.Stderr())
	rotate()
	compWaitLog(t, pf, `to=<spam2@gmail\.test>, .*status=bounced`, 40*time.Second)
	enforcerOnce(t, nil, args...)
	compWantBans(t, banLog, "203.0.113.31", "203.0.113.32")
	matches, _ := filepath.Glob(pf.MailLogFile() + ".*")
	t.Logf("rotated files: %q", matches)
}
