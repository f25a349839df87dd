package stats

import (
	"strings"
	"testing"
)

// TestOps28SyslogLines: the mail log as the system log keeps it (the
// shipped unit sends it to the journal, and rsyslog to /var/log/mail.log;
// --syslog sends it there too) and as journalctl prints it is read as the
// plain lines are. Before, every such line was skipped as "not a mail-log
// line", and "relaykeeper stats /var/log/mail.log", pflogsumm's habit,
// reported nothing at all. Only the relay's own tag counts: a line another
// program logged, with the relay's words in it, is no event.
func TestOps28SyslogLines(t *testing.T) {
	const accept = "2026-12-07T21:41:34.951Z accept id=6B17280E7067E89D client=127.0.0.1:57026 from=<a@example.org> nrcpt=1 size=411 auth=-"
	log := strings.Join([]string{
		"Dec  7 21:41:34 vm relaykeeper[28032]: " + accept,                  // rsyslog's traditional format
		"Dec 07 21:41:34 vm relaykeeper[28032]: " + accept,                  // journalctl
		"2026-12-07T21:41:34.951234+00:00 vm relaykeeper[28032]: " + accept, // rsyslog, Debian 12
		"2026-12-07T21:41:34+0000 vm relaykeeper[28032]: " + accept,         // journalctl -o short-iso
		"Dec  7 21:41:34 vm relaykeeper: " + accept,                         // no pid
		`Dec  7 21:41:34 vm relaykeeper[28032]: {"time":"2026-12-07T21:41:34.951Z","level":"INFO","msg":"mail log","line":"` + accept + `"}`,
		"Dec  7 21:41:35 vm postfix/smtpd[77]: warning: bad: " + accept,                            // another program's words
		"Dec  7 21:41:35 vm relaykeeper-x[77]: " + accept,                                          // another tag
		"Dec  7 21:41:35 vm relaykeeper[7a]: " + accept,                                            // not a pid
		"Dec  7 21:41:35 vm relaykeeper[28032]: time=2026-12-07T21:41:35Z level=INFO msg=stopping", // diagnostics
	}, "\n")
	rep, err := Aggregate(strings.NewReader(log), 10)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Received.Messages != 6 || rep.Lines != 10 || rep.Skipped != 4 {
		t.Errorf("received %d, lines %d, skipped %d; want 6, 10, 4", rep.Received.Messages, rep.Lines, rep.Skipped)
	}
}
