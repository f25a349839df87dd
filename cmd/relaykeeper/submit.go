package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

const submitUsage = `usage: relaykeeper submit [SWITCHES] [RECIPIENT...]

Reads a message (RFC 5322, LF or CRLF line endings) from the standard input
and puts it in the spool for forwarding, as E-MailRelay's emailrelay-submit
does (see docs/pop3.md).

  -f, --from ADDRESS     the envelope sender (default: the From header's
                         address, else USER@HOSTNAME); "<>" for none
  -t                     also send to the addresses in the To, Cc and Bcc
                         headers
      --spool-dir DIR    the spool (default: from --config, else
                         /var/spool/relaykeeper)
      --config FILE      read the spool directory and domain from this file
  -i, -oi                ignored, for sendmail's callers: the message always
                         ends at the end of the input, never at a "." line

A RECIPIENT may be a comma-separated list. Bcc headers are removed. The
message gets a Received header, and Date and Message-ID headers if it has
none; it is stored durably, ready for forwarding, and its queue id printed.
A relay running on the spool is then sent SIGHUP so that it forwards the
message at once. Exit status: 0 stored, 1 not stored, 2 a wrong command line.
`

// submitEnv is what submit takes from the system, replaceable in tests.
type submitEnv struct {
	now      func() time.Time
	hostname func() (string, error)
	username func() string
	uid      int
}

// runSubmit is "relaykeeper submit": it spools one message read from stdin
// and returns the exit status.
func runSubmit(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return submit(args, stdin, stdout, stderr, submitEnv{
		now:      time.Now,
		hostname: os.Hostname,
		username: loginName,
		uid:      os.Getuid(),
	})
}

// loginName is the invoking user's name, for the default sender.
func loginName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"LOGNAME", "USER"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "nobody"
}

func submit(args []string, stdin io.Reader, stdout, stderr io.Writer, sys submitEnv) int {
	fs := flag.NewFlagSet("relaykeeper submit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var from string
	fs.StringVar(&from, "f", "", "")
	fs.StringVar(&from, "from", "", "")
	fromHeaders := fs.Bool("t", false, "")
	spoolDir := fs.String("spool-dir", "", "")
	configFile := fs.String("config", "", "")
	fs.Bool("i", false, "")
	fs.Bool("oi", false, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")

	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper submit: %s (see relaykeeper submit --help)\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	failure := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper submit: %s\n", fmt.Sprintf(format, a...))
		return exitFailure
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usage("%v", err)
	}
	if *help {
		io.WriteString(stdout, submitUsage)
		return exitOK
	}
	fromSet := false
	fs.Visit(func(f *flag.Flag) { fromSet = fromSet || f.Name == "f" || f.Name == "from" })

	var rcpts []string
	seen := map[string]bool{}
	addRcpt := func(a envelope.Address) {
		if s := a.String(); !seen[s] {
			seen[s] = true
			rcpts = append(rcpts, s)
		}
	}
	for _, arg := range pos {
		for _, s := range strings.Split(arg, ",") {
			s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
			if s == "" {
				continue
			}
			a, err := envelope.Parse(s)
			if err != nil {
				return usage("recipient %q: %v", s, err)
			}
			addRcpt(a)
		}
	}
	var sender envelope.Address // the zero Address is the null sender, <>
	if fromSet {
		if s := strings.TrimSpace(from); s != "" && s != "<>" {
			if sender, err = envelope.Parse(strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")); err != nil {
				return usage("sender %q: %v", from, err)
			}
		}
	}
	if len(rcpts) == 0 && !*fromHeaders {
		return usage("no recipients: give addresses, or -t to take them from the headers")
	}

	cfg := config.Default()
	if *configFile != "" {
		if cfg, err = config.Load(*configFile); err != nil {
			fmt.Fprintf(stderr, "relaykeeper submit: %v\n", err)
			return exitUsage
		}
	}
	dir := cfg.Spool.Dir
	if *spoolDir != "" {
		dir = *spoolDir
	}
	host := cfg.Domain
	if host == "" {
		if host, err = sys.hostname(); err != nil || host == "" {
			host = "localhost"
		}
	}

	raw, err := io.ReadAll(stdin)
	if err != nil {
		return failure("reading the message: %v", err)
	}
	msg := parseSubmitted(raw)
	if *fromHeaders {
		for _, name := range []string{"To", "Cc", "Bcc"} {
			for _, v := range msg.values(name) {
				list, err := mail.ParseAddressList(v)
				if err != nil {
					return failure("%s header %q: %v", name, strings.TrimSpace(v), err)
				}
				for _, ma := range list {
					a, err := envelope.ParseUnquoted(ma.Address)
					if err != nil {
						return failure("%s header address %q: %v", name, ma.Address, err)
					}
					addRcpt(a)
				}
			}
		}
		if len(rcpts) == 0 {
			return failure("no recipients in the To, Cc or Bcc headers")
		}
	}
	if !fromSet {
		// The From header's first address, else the invoking user.
		if vs := msg.values("From"); len(vs) > 0 {
			if list, err := mail.ParseAddressList(vs[0]); err == nil && len(list) > 0 {
				if a, err := envelope.ParseUnquoted(list[0].Address); err == nil {
					sender = a
				}
			}
		}
		if sender.String() == "" {
			if sender, err = envelope.Parse(sys.username() + "@" + host); err != nil {
				return failure("no sender: give -f ADDRESS (%v)", err)
			}
		}
	}

	// spool.Open creates a missing directory: a mistyped --spool-dir must
	// not make a spool that no relay reads.
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return failure("spool directory %s: %v", dir, unwrapPath(err))
	}
	sp, err := spool.Open(dir, nil)
	if err != nil {
		return failure("%v", err)
	}
	now := sys.now()
	w, err := sp.Create(now)
	if err != nil {
		return failure("%v", err)
	}
	content := msg.content(w.ID(), host, sys.uid, rcpts, now)
	env := &spool.Envelope{
		From:     sender.String(),
		BodyType: "7bit",
		Client:   "local",
		Arrival:  now,
	}
	if bytes.ContainsFunc(content, func(r rune) bool { return r >= 0x80 }) {
		env.BodyType = "8bit"
	}
	for _, r := range append([]string{env.From}, rcpts...) {
		env.SMTPUTF8 = env.SMTPUTF8 || strings.ContainsFunc(r, func(c rune) bool { return c >= 0x80 })
	}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: r, Status: spool.Pending})
	}
	if _, err := w.Write(content); err != nil {
		w.Abort()
		return failure("writing the message: %v", err)
	}
	if err := w.Prepare(env); err != nil {
		w.Abort()
		return failure("%v", err)
	}
	if err := w.Commit(false); err != nil {
		w.Abort()
		return failure("%v", err)
	}
	fmt.Fprintln(stdout, w.ID())

	if _, err := queue.Notify(sp); err != nil && !errors.Is(err, queue.ErrNoRelay) {
		fmt.Fprintf(stderr, "relaykeeper submit: warning: relay not notified (the message goes at its next scan): %v\n", err)
	}
	return exitOK
}

// submitted is a message read from the input: its header fields, each with
// its continuation lines and CRLF, and its body.
type submitted struct {
	fields []headerField
	body   []byte
}

type headerField struct {
	name string // as written
	raw  string // "Name: value\r\n" with continuation lines
}

// parseSubmitted reads a message with LF or CRLF line endings (stored as
// CRLF), without a leading mbox "From " line. The header ends at the blank line, or, as with Postfix, at the
// first line that is neither a header field nor a continuation line, which
// then starts the body.
func parseSubmitted(raw []byte) *submitted {
	// Every line ending becomes CRLF, a lone CR too, as for SMTP (see
	// package crlf).
	norm := crlf.Bytes(raw)
	if len(norm) > 0 && !bytes.HasSuffix(norm, []byte("\r\n")) {
		norm = append(norm, "\r\n"...)
	}
	m := &submitted{}
	rest := norm
	if bytes.HasPrefix(rest, []byte("From ")) {
		// An mbox "From " line, which sendmail's callers may leave in.
		rest = rest[bytes.Index(rest, []byte("\r\n"))+2:]
	}
	for len(rest) > 0 {
		i := bytes.Index(rest, []byte("\r\n"))
		line := rest[:i+2]
		switch {
		case i == 0:
			m.body = rest[2:] // the blank line ends the header
			return m
		case (line[0] == ' ' || line[0] == '\t') && len(m.fields) > 0:
			m.fields[len(m.fields)-1].raw += string(line)
		case fieldName(line) != "":
			m.fields = append(m.fields, headerField{name: fieldName(line), raw: string(line)})
		default:
			m.body = rest
			return m
		}
		rest = rest[i+2:]
	}
	return m
}

// fieldName returns the name of a header field line (RFC 5322 section
// 2.2: printable ASCII but ':', then ':'), or "".
func fieldName(line []byte) string {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return ""
	}
	for _, c := range line[:i] {
		if c <= ' ' || c > '~' {
			return ""
		}
	}
	return string(line[:i])
}

// values returns the unfolded values of the fields called name.
func (m *submitted) values(name string) []string {
	var out []string
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			v := f.raw[len(f.name)+1:]
			v = strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t", "\r\n", "").Replace(v)
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// content is the message as stored: a Received header (RFC 5321 section
// 4.4, in the form Postfix's pickup writes for local mail), the fields but
// Bcc, Message-ID and Date if missing (RFC 5322 section 3.6 requires Date
// and recommends Message-ID), the blank line and the body.
func (m *submitted) content(id, host string, uid int, rcpts []string, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: by %s (relaykeeper, from userid %d)\r\n\tid %s", host, uid, id)
	if len(rcpts) == 1 {
		// Only for one recipient: more would tell each who else got it.
		fmt.Fprintf(&b, "\r\n\tfor <%s>", rcpts[0])
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", now.Format(time.RFC1123Z))
	for _, f := range m.fields {
		if !strings.EqualFold(f.name, "Bcc") {
			b.WriteString(f.raw)
		}
	}
	if len(m.values("Message-ID")) == 0 {
		fmt.Fprintf(&b, "Message-ID: <%s.%d@%s>\r\n", id, now.UnixNano(), host)
	}
	if len(m.values("Date")) == 0 {
		fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	b.WriteString("\r\n")
	b.Write(m.body)
	return b.Bytes()
}
