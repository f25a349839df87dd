package filter

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/command"
	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/safefile"
	"github.com/relaykeeper/relaykeeper/internal/sendmail"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// pipeMaxOutput bounds the rewritten message a pipe: filter may write.
const pipeMaxOutput = 64 << 20

// pipe is pipe:PROGRAM, a Postfix "simple content filter" (FILTER_README)
// without the re-injection: the program reads the message on its standard
// input and says what to do with its exit status (sysexits.h), as Postfix's
// pipe(8) reads it:
//
//	0                   ok; if the program wrote a whole message on its
//	                    standard output, that message replaces the content
//	75 EX_TEMPFAIL,     tempfail (4.3.0)
//	71 EX_OSERR
//	64-78, others       reject with the status's enhanced code (69
//	                    EX_UNAVAILABLE is 5.3.0)
//	anything else       reject, 5.3.0 "unknown mail system error N"
//
// Postfix's filter hands the message back with sendmail; here the program
// writes it to standard output instead, or runs relaykeeper's sendmail
// with the filtered envelope, which hands it back in a file of the run's
// own (sendmail.HandBackFileEnv) that then takes the place of standard
// output, whatever that holds. Standard output must be empty
// (content unchanged) or a whole message: starting with a header field and
// ending with a line feed; anything else is TempFail, since the filter
// meant to change the message and it is not clear to what. After a failing
// status the first line of output (standard output unless it is a message,
// else standard error) is the reply text, as Postfix puts the command's
// output in its bounce.
//
// In the arguments ${sender} is the envelope sender and ${recipient} the
// pending recipients, one argument each, so that a Postfix master.cf argv
// ("-f ${sender} -- ${recipient}") can be used as it is.
type pipe struct {
	spec    string
	argv    []string
	macros  bool // the arguments need the envelope
	timeout time.Duration
}

var macroRE = regexp.MustCompile(`\$\{[^}]*\}`)

func newPipe(spec, arg string, timeout time.Duration) (*pipe, error) {
	argv, err := command.Split(arg)
	if err != nil {
		return nil, fmt.Errorf("filter: %q: %w", spec, err)
	}
	if err := command.CheckExecutable(argv[0]); err != nil {
		return nil, fmt.Errorf("filter: %q: %w", spec, err)
	}
	for _, a := range argv[1:] {
		for _, m := range macroRE.FindAllString(a, -1) {
			if m != "${sender}" && m != "${recipient}" {
				return nil, fmt.Errorf("filter: %q: unknown macro %s (want ${sender} or ${recipient})", spec, m)
			}
		}
	}
	return &pipe{spec: spec, argv: argv, macros: strings.Contains(strings.Join(argv[1:], " "), "${"), timeout: timeout}, nil
}

func (p *pipe) String() string { return p.spec }

func (p *pipe) Run(ctx context.Context, contentPath, envelopePath string) Result {
	argv, handBack := p.argv, []string(nil)
	env, err := readEnvelope(envelopePath)
	if err == nil {
		argv = p.expand(env)
		// relaykeeper's sendmail, run by the program with this envelope
		// to re-inject the message, hands it back on standard output.
		handBack = []string{sendmail.HandBackEnv(env.From, env.Pending())}
	} else if p.macros {
		return tempFail("pipe: %v", err)
	}
	var backFile string
	if handBack != nil {
		// sendmail hands the message back in this file, not on the
		// program's standard output (sendmail.HandBackFileEnv).
		bf, err := os.CreateTemp("", "relaykeeper-handback-*")
		if err != nil {
			return tempFail("pipe: %v", err)
		}
		backFile = bf.Name()
		bf.Close()
		defer os.Remove(backFile)
		handBack = append(handBack, sendmail.HandBackFileEnv(backFile))
	}
	f, err := os.Open(contentPath)
	if err != nil {
		return tempFail("pipe: %v", err)
	}
	defer f.Close()
	res, err := command.Run(ctx, argv, command.Options{Stdin: f, Timeout: p.timeout, MaxStdout: pipeMaxOutput, Env: handBack})
	if r, failed := runFailure(argv[0], p.timeout, res, err); failed {
		return r
	}
	if res.ExitCode == 0 {
		if back, ok, r := readHandBack(backFile); !ok {
			return r
		} else if back != "" {
			// Handed back by sendmail: that is the filtered message,
			// whatever else the program wrote on its standard output.
			return p.rewrite(contentPath, back)
		}
		return p.rewrite(contentPath, res.Stdout)
	}
	return sysexitResult(res.ExitCode, res.Stdout, res.Stderr)
}

func (p *pipe) rewrite(contentPath, out string) Result {
	switch {
	case out == "":
		return okResult()
	case len(out) >= pipeMaxOutput:
		return tempFail("pipe: output larger than %d bytes", pipeMaxOutput)
	case !wholeMessage(out):
		return tempFail("pipe: exit 0 with output that is not a whole message: %q", firstLine(out))
	}
	err := safefile.Replace(contentPath, safefile.Options{}, func(w io.Writer) error {
		cw := crlf.NewWriter(w)
		if _, err := io.WriteString(cw, out); err != nil {
			return err
		}
		return cw.Close()
	})
	if err != nil {
		return tempFail("pipe: rewrite %s: %v", contentPath, err)
	}
	return Result{Outcome: OK, Reason: "pipe: content rewritten"}
}

// readHandBack reads the message sendmail handed back in path ("" if
// none); ok is false, with r the result, if it cannot be read or is larger
// than the output a filter may give.
func readHandBack(path string) (back string, ok bool, r Result) {
	if path == "" {
		return "", true, r
	}
	f, err := os.Open(path)
	if err != nil {
		return "", false, tempFail("pipe: hand-back: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, pipeMaxOutput))
	if err != nil {
		return "", false, tempFail("pipe: hand-back: %v", err)
	}
	return string(b), true, r
}

func readEnvelope(path string) (*spool.Envelope, error) {
	ef, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	env, err := spool.Unmarshal(ef)
	if err != nil {
		return nil, fmt.Errorf("envelope %s: %w", path, err)
	}
	return env, nil
}

// expand replaces ${sender} and ${recipient} in the arguments.
func (p *pipe) expand(env *spool.Envelope) []string {
	argv := []string{p.argv[0]}
	for _, a := range p.argv[1:] {
		a = strings.ReplaceAll(a, "${sender}", env.From)
		if !strings.Contains(a, "${recipient}") {
			argv = append(argv, a)
			continue
		}
		for _, rcpt := range env.Pending() {
			argv = append(argv, strings.ReplaceAll(a, "${recipient}", rcpt))
		}
	}
	return argv
}

// sysexits is Postfix's table of sysexits.h statuses (global/sys_exits.c):
// enhanced status code and text. Codes of class 4 are temporary.
var sysexits = map[int]struct{ dsn, text string }{
	64: {"5.3.0", "command line usage error"},
	65: {"5.6.0", "data format error"},
	66: {"5.3.0", "cannot open input"},
	67: {"5.1.1", "user unknown"},
	68: {"5.1.2", "host name unknown"},
	69: {"5.3.0", "service unavailable"},
	70: {"5.3.0", "internal software error"},
	71: {"4.3.0", "system resource problem"},
	72: {"5.3.0", "critical OS file missing"},
	73: {"5.2.0", "can't create user output file"},
	74: {"5.3.0", "input/output error"},
	75: {"4.3.0", "temporary failure"},
	76: {"5.5.0", "remote error in protocol"},
	77: {"5.7.0", "permission denied"},
	78: {"5.3.5", "local configuration error"},
}

func sysexitResult(code int, stdout, stderr string) Result {
	e, known := sysexits[code]
	if !known {
		e.dsn, e.text = "5.3.0", fmt.Sprintf("unknown mail system error %d", code)
	}
	// The output is the reply text, as Postfix puts it in the bounce, but
	// not when it is the message itself (spamassassin --exit-code).
	text := ""
	if !wholeMessage(stdout) {
		text = printable(firstLine(stdout))
	}
	if text == "" {
		text = printable(firstLine(stderr))
	}
	if text == "" {
		text = e.text
	}
	r := Result{Outcome: Reject, Code: 550, Enhanced: e.dsn, Text: text,
		Reason: fmt.Sprintf("pipe: exit %d (%s): %s", code, e.text, text)}
	if e.dsn[0] == '4' {
		r.Outcome, r.Code = TempFail, 451
	}
	return r
}

// wholeMessage reports whether out looks like a complete message: a header
// field first and a line feed last.
func wholeMessage(out string) bool {
	if !strings.HasSuffix(out, "\n") {
		return false
	}
	first, _, _ := strings.Cut(out, "\n")
	isField, _ := headerLine([]byte(first+"\n"), false)
	return isField
}

// firstLine is the first non-empty line of s, without its line ending.
func firstLine(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
			return line
		}
	}
	return ""
}
