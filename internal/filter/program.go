package filter

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/command"
)

// program is an external filter run as E-MailRelay runs it: no shell, argv
// the words of the specification then the content and envelope paths, the
// reduced environment and stdin from /dev/null that command.Run gives.
type program struct {
	spec    string
	argv    []string
	side    Side
	timeout time.Duration
	// contentOnly: the program is SpamAssassin's spamassassin, which
	// checks every file named on its command line as a message; it gets
	// the content path alone (below).
	contentOnly bool
}

func newProgram(spec, arg string, side Side, timeout time.Duration) (Filter, error) {
	argv, err := command.Split(arg)
	if err != nil {
		return nil, fmt.Errorf("filter: %q: %w", spec, err)
	}
	if isFilterCopy(argv[0]) {
		return newCopy(spec, "")
	}
	if err := command.CheckExecutable(argv[0]); err != nil {
		return nil, fmt.Errorf("filter: %q: %w", spec, err)
	}
	return &program{spec: spec, argv: argv, side: side, timeout: timeout, contentOnly: isSpamAssassin(argv[0])}, nil
}

// isFilterCopy says whether name is E-MailRelay's emailrelay-filter-copy
// program, which its user guide gives for --pop-by-name: it copies each new
// message into every mailbox directory and drops the original (exit 100).
// It is the copy: filter here, wherever it was installed: E-MailRelay's
// program copies only the envelope and leaves the content in the main
// directory, where relaykeeper's POP3 server does not look.
func isFilterCopy(name string) bool {
	base := programBase(name)
	return base == "emailrelay-filter-copy" || base == "emailrelay-filter-copy.exe"
}

// programBase is a program's file name in lower case, for a Unix or a
// Windows path.
func programBase(name string) string {
	return strings.ToLower(filepath.Base(strings.ReplaceAll(name, "\\", "/")))
}

// isSpamAssassin says whether name is SpamAssassin's command-line program
// (spamassassin, or spamassassin.bat as the E-MailRelay guide writes it on
// Windows). The guide's --filter "/usr/bin/spamassassin --exit-code" means
// "check the message": given the envelope too, SpamAssassin would check it
// as a second message, which scores as spam by itself (no From, Date or
// Subject), and every message would be refused.
func isSpamAssassin(name string) bool {
	base := programBase(name)
	return base == "spamassassin" || base == "spamassassin.bat"
}

func (p *program) String() string { return p.spec }

func (p *program) Run(ctx context.Context, contentPath, envelopePath string) Result {
	argv := append(append([]string(nil), p.argv...), absPath(contentPath), absPath(envelopePath))
	if p.contentOnly {
		argv = argv[:len(argv)-1]
	}
	res, err := command.Run(ctx, argv, command.Options{Timeout: p.timeout})
	if r, failed := runFailure(p.argv[0], p.timeout, res, err); failed {
		return r
	}
	return exitResult(p.side, res.ExitCode, res.Stdout)
}

// runFailure says whether a program's run gave no answer (it could not
// start, ctx ended, it timed out or a signal killed it), and if so the
// TempFail for it.
func runFailure(name string, timeout time.Duration, res command.Result, err error) (Result, bool) {
	name = filepath.Base(name)
	switch {
	case err != nil:
		// Cannot start, or ctx ended (the error says which).
		return tempFail("%s: %v", name, err), true
	case res.TimedOut:
		return tempFail("%s: timed out after %v%s", name, timeout, stderrNote(res.Stderr)), true
	case res.Signaled:
		return tempFail("%s: killed by a signal%s", name, stderrNote(res.Stderr)), true
	}
	return Result{}, false
}

func stderrNote(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	first, _, _ := strings.Cut(s, "\n")
	return ": " + first
}

// exitResult interprets a program filter's exit code and standard output
// with E-MailRelay's table (GSmtp::Filter::Exit), for each side:
//
//	exit     server (--filter)     client (--client-filter)
//	0, 101   ok                    ok
//	1-99     reject                reject
//	100      abandon               abandon
//	102      abandon + rescan      ok + stop scanning
//	103      ok + rescan           ok
//	104      reject + rescan       abandon + stop scanning
//	105      reject                reject + stop scanning
//	other    reject                reject
//
// A rejection takes its text from the output (parseOutput, refusal).
func exitResult(side Side, code int, stdout string) Result {
	var r Result
	switch {
	case code == 0 || code == 101:
		r.Outcome = OK
	case code >= 1 && code <= 99:
		r.Outcome = Reject
	case code == 100:
		r.Outcome = Abandon
	case code == 102 && side == Server:
		r = Result{Outcome: Abandon, Rescan: true}
	case code == 102:
		r = Result{Outcome: OK, StopScanning: true}
	case code == 103 && side == Server:
		r = Result{Outcome: OK, Rescan: true}
	case code == 103:
		r.Outcome = OK
	case code == 104 && side == Server:
		r = Result{Outcome: Reject, Rescan: true}
	case code == 104:
		r = Result{Outcome: Abandon, StopScanning: true}
	case code == 105 && side == Client:
		r = Result{Outcome: Reject, StopScanning: true}
	default: // 105 server side, 106-115 reserved, anything else
		r.Outcome = Reject
	}
	if r.Outcome != Reject {
		return r
	}
	text, reason := parseOutput(stdout)
	if reason == "" || reason == text {
		reason = fmt.Sprintf("exit %d", code)
		if text != "" {
			reason += ": " + text
		}
	}
	rr := refusal(text, reason)
	rr.Rescan, rr.StopScanning = r.Rescan, r.StopScanning
	return rr
}

// exitFilter is exit:N, which behaves as a program that exited with N and
// wrote nothing.
type exitFilter struct {
	spec string
	side Side
	code int
}

func (e *exitFilter) String() string { return e.spec }

func (e *exitFilter) Run(context.Context, string, string) Result {
	return exitResult(e.side, e.code, "")
}

// absPath makes p absolute, so that a program or daemon with another
// working directory finds the file; it leaves p alone if that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
