package smtpd

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestOps25IdleTimeoutLogged: a client silent between commands for the
// idle timeout hears "421 4.4.2 DOMAIN Error: timeout exceeded"
// (docs/limits.md), a refusal the mail log writes as a reject of stage
// timeout, as it does the transaction timeout's and Postfix its "timeout
// after EHLO" (docs/maillog.md, docs/metrics.md: relaykeeper_smtp_refused_total
// counts the stage). The relay wrote nothing: the session's log was its
// connect and its disconnect.
func TestOps25IdleTimeoutLogged(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("EHLO c\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var last string
	for sc := bufio.NewScanner(c); sc.Scan(); {
		last = sc.Text()
	}
	if !strings.HasPrefix(last, "421 4.4.2 ") || !strings.HasSuffix(last, " Error: timeout exceeded") {
		t.Fatalf("last reply %q; want 421 4.4.2 DOMAIN Error: timeout exceeded", last)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(ts.log.String(), " stage=timeout reply=\""+last+"\"") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if log := ts.log.String(); !strings.Contains(log, " stage=timeout reply=\""+last+"\"") {
		t.Errorf("the mail log lacks the timeout's reject (stage=timeout reply=%q):\n%s", last, log)
	}
}
