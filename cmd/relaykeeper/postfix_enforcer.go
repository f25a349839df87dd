package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

const postfixEnforcerUsage = `usage: relaykeeper postfix-enforcer [switches]

Follows Postfix's mail log and acts on the upstream's (Gmail's) refusals of
relayed mail, as relay-enforcer does: bans the client that submitted the
message (a "bannable" line for fail2ban), blocks the sender's domain in
sender_access, or sends the message on encapsulated, by the rules. See
docs/postfix-enforcer.md.

relay-enforcer's switches:
  -v              verbose: a dot per log line read, the time every hour
  -q              quiet: no line per action (errors are still shown)
  -t              test mode: say what would be done, change nothing
  -d              debug: every line understood and every verdict; implies -v
  -f BACKUP       the mbox that keeps a copy of every relayed message
                  (always_bcc); needed to encapsulate
  -m ADDRESS      mail ADDRESS a report of each action and unknown refusal
  -a | -n         force | forbid following amavis's re-injection
  -r              replace a running instance (stop it, then run)
  -s              stop a running instance and exit

relaykeeper's:
  --log FILE            Postfix's mail log (default /var/log/mail.log)
  --state FILE          how far the log was read, and what was done
                        (default /var/lib/relaykeeper/postfix-enforcer.state)
  --sender-access FILE  the access table to block domains in
                        (default /etc/postfix/sender_access; postmap'ed)
  --welcomelist FILE    clients never banned (default
                        /etc/relaykeeper/welcomelist; created if missing)
  --rules FILE          the rules (default: the built-in Gmail rules)
  --smtp HOST:PORT      where encapsulated copies and reports are sent
                        (default 127.0.0.1:25)
  --sender ADDRESS      their sender (default postmaster@HOSTNAME)
  --ban-log FILE        append ban lines there instead of to syslog
  --ban-delay DURATION  wait before a ban line (default 10s, as relay-enforcer)
  --upstream REGEXP     act on refusals from relays ("host[ip]:port") that
                        match, instead of on replies ending in "gsmtp"
  --once                read what the log holds now, then exit
  --from-end            with no state yet, start at the log's end
`

// pfeOptions are postfix-enforcer's switches.
type pfeOptions struct {
	verbose, quiet, test, debug bool
	backup, mailTo              string
	amavis, noAmavis            bool
	restart, stop               bool
	log, state, senderAccess    string
	welcomelist, rules, smtp    string
	sender, banLog, upstream    string
	banDelay                    time.Duration
	once, fromEnd               bool
}

// runPostfixEnforcer is "relaykeeper postfix-enforcer". It returns the exit
// status.
func runPostfixEnforcer(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o pfeOptions
	fs := flag.NewFlagSet("relaykeeper postfix-enforcer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.verbose, "v", false, "")
	fs.BoolVar(&o.quiet, "q", false, "")
	fs.BoolVar(&o.test, "t", false, "")
	fs.BoolVar(&o.debug, "d", false, "")
	fs.StringVar(&o.backup, "f", "", "")
	fs.StringVar(&o.mailTo, "m", "", "")
	fs.BoolVar(&o.amavis, "a", false, "")
	fs.BoolVar(&o.noAmavis, "n", false, "")
	fs.BoolVar(&o.restart, "r", false, "")
	fs.BoolVar(&o.stop, "s", false, "")
	fs.StringVar(&o.log, "log", "/var/log/mail.log", "")
	fs.StringVar(&o.state, "state", "", "")
	fs.StringVar(&o.senderAccess, "sender-access", "/etc/postfix/sender_access", "")
	fs.StringVar(&o.welcomelist, "welcomelist", "/etc/relaykeeper/welcomelist", "")
	fs.StringVar(&o.rules, "rules", "", "")
	fs.StringVar(&o.smtp, "smtp", "127.0.0.1:25", "")
	fs.StringVar(&o.sender, "sender", "", "")
	fs.StringVar(&o.banLog, "ban-log", "", "")
	fs.DurationVar(&o.banDelay, "ban-delay", 10*time.Second, "")
	fs.StringVar(&o.upstream, "upstream", "", "")
	fs.BoolVar(&o.once, "once", false, "")
	fs.BoolVar(&o.fromEnd, "from-end", false, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v (see relaykeeper postfix-enforcer --help)\n", err)
		return exitUsage
	}
	if *help {
		io.WriteString(stdout, postfixEnforcerUsage)
		return exitOK
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if o.amavis && o.noAmavis {
		problems = append(problems, "-a and -n exclude each other")
	}
	if o.quiet && (o.verbose || o.debug) {
		problems = append(problems, "-q excludes -v and -d")
	}
	if o.banDelay < 0 {
		problems = append(problems, "--ban-delay must not be negative")
	}
	var upstream *regexp.Regexp
	if o.upstream != "" {
		re, err := regexp.Compile(o.upstream)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--upstream: %v", err))
		}
		upstream = re
	}
	if _, _, err := net.SplitHostPort(o.smtp); err != nil {
		problems = append(problems, fmt.Sprintf("--smtp %q: %v", o.smtp, err))
	}
	if o.mailTo != "" {
		if _, err := mail.ParseAddress(o.mailTo); err != nil {
			problems = append(problems, fmt.Sprintf("-m %q: %v", o.mailTo, err))
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %s\n", p)
		}
		return exitUsage
	}
	o.verbose = o.verbose || o.debug
	level := slog.LevelInfo
	switch {
	case o.debug:
		level = slog.LevelDebug
	case o.quiet:
		level = slog.LevelWarn
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if o.sender == "" {
		o.sender = "postmaster@" + host
	}
	if o.state == "" {
		o.state = defaultStatePath(o.log)
	}

	if o.stop || o.restart {
		if err := stopOther(o.state+".pid", stderr); err != nil {
			fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v\n", err)
			return exitFailure
		}
		if o.stop {
			return exitOK
		}
	}

	// The lock is taken first and released last, after the pending ban
	// lines are written: -r and -s wait for it.
	if !o.test {
		unlock, err := lockInstance(o.state + ".pid")
		if err != nil {
			fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v\n", err)
			return exitFailure
		}
		defer unlock()
	}
	prog := &progress{w: stdout, now: time.Now}
	if !o.verbose {
		prog.w = nil
	}
	diag := slog.New(slog.NewTextHandler(&lineBreaker{p: prog, w: stderr}, &slog.HandlerOptions{Level: level}))
	e, err := newPostfixEnforcer(o, host, upstream, stdout, prog, diag)
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v\n", err)
		return exitFailure
	}
	defer e.close()
	st, err := postfixlog.LoadState(o.state)
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v\n", err)
		return exitFailure
	}
	if err := e.restore(st.App); err != nil {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: state file %s: %v\n", o.state, err)
		return exitFailure
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	f := &postfixlog.Follower{
		Path: o.log, State: o.state, ReadOnly: o.test, Once: o.once, FromEnd: o.fromEnd,
		Checkpoint: e.checkpoint,
		AtEOF:      e.atEOF,
		Logf:       func(format string, args ...any) { diag.Warn(fmt.Sprintf(format, args...)) },
	}
	diag.Info("postfix-enforcer started", "log", o.log, "state", o.state, "test", o.test, "once", o.once)
	err = f.Run(ctx, e.line)
	prog.breakLine()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// defaultStatePath is /var/lib/relaykeeper/postfix-enforcer.state, or, if
// that directory cannot be made, a hidden file next to the log.
func defaultStatePath(logPath string) string {
	const dir = "/var/lib/relaykeeper"
	if err := os.MkdirAll(dir, 0o750); err == nil {
		return filepath.Join(dir, "postfix-enforcer.state")
	}
	return filepath.Join(filepath.Dir(logPath), ".postfix-enforcer.state")
}

// postfixEnforcer acts on the refusals in Postfix's mail log. Its methods
// run on the Follower's goroutine, one line at a time.
type postfixEnforcer struct {
	o        pfeOptions
	host     string
	upstream *regexp.Regexp // nil: replies ending in "gsmtp"
	rules    *enforce.Rules
	welcome  *enforce.Welcomelist
	tracker  *postfixlog.Tracker
	bans     *delayedBans
	actions  *maillog.Logger // one line per action; discards with -q
	prog     *progress
	log      *slog.Logger
	now      func() time.Time
	cleanup  []func()
	// acted holds what was done, by actedKey, so that a deferral seen
	// again on a retry (or a line read again after a crash) is not acted
	// on twice. Saved in the state file with the position.
	acted map[string]time.Time
}

// actedTTL is how long an action is remembered: longer than Postfix keeps
// a deferred message (maximal_queue_lifetime, 5 days by default).
const actedTTL = 10 * 24 * time.Hour

// maxActed bounds the actions remembered.
const maxActed = 100000

func newPostfixEnforcer(o pfeOptions, host string, upstream *regexp.Regexp, stdout io.Writer, prog *progress, diag *slog.Logger) (*postfixEnforcer, error) {
	e := &postfixEnforcer{o: o, host: host, upstream: upstream, prog: prog, log: diag, now: time.Now, acted: map[string]time.Time{}}
	e.rules = enforce.DefaultRules()
	if o.rules != "" {
		rs, err := enforce.LoadRules(o.rules)
		if err != nil {
			return nil, err
		}
		e.rules = rs
	}
	wl := o.welcomelist
	if _, err := os.Stat(wl); errors.Is(err, os.ErrNotExist) && o.test {
		// Test mode changes nothing: the default list from a temporary file.
		tmp, err := os.CreateTemp("", "relaykeeper-welcomelist-*")
		if err != nil {
			return nil, err
		}
		tmp.WriteString(enforce.DefaultWelcomelist)
		tmp.Close()
		wl = tmp.Name()
		e.cleanup = append(e.cleanup, func() { os.Remove(tmp.Name()) })
	}
	w, err := enforce.OpenWelcomelist(wl)
	if err != nil {
		e.close()
		return nil, err
	}
	e.welcome = w
	mode := postfixlog.ReinjectAuto
	switch {
	case o.amavis:
		mode = postfixlog.ReinjectAlways
	case o.noAmavis:
		mode = postfixlog.ReinjectNever
	}
	e.tracker = &postfixlog.Tracker{Reinjection: mode}
	out := io.Writer(&lineBreaker{p: prog, w: stdout})
	if o.quiet {
		out = io.Discard
	}
	e.actions = maillog.New(out)
	if !o.test {
		bw, err := openBanWriter(o.banLog, host, diag)
		if err != nil {
			e.close()
			return nil, err
		}
		e.bans = newDelayedBans(bw, o.banDelay, diag)
		e.cleanup = append(e.cleanup, e.bans.close)
	}
	return e, nil
}

func (e *postfixEnforcer) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
	e.cleanup = nil
}

// pfeState is the enforcer's part of the state file.
type pfeState struct {
	Acted   map[string]time.Time `json:"acted"`
	Tracker *postfixlog.Tracker  `json:"tracker"`
}

// checkpoint returns the enforcer's state, for the Follower to save with
// its position.
func (e *postfixEnforcer) checkpoint() ([]byte, error) {
	cutoff := e.now().Add(-actedTTL)
	for k, t := range e.acted {
		if t.Before(cutoff) {
			delete(e.acted, k)
		}
	}
	if over := len(e.acted) - maxActed; over > 0 {
		keys := make([]string, 0, len(e.acted))
		for k := range e.acted {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return e.acted[keys[i]].Before(e.acted[keys[j]]) })
		for _, k := range keys[:over] {
			delete(e.acted, k)
		}
	}
	return json.Marshal(pfeState{Acted: e.acted, Tracker: e.tracker})
}

// restore takes back what checkpoint saved.
func (e *postfixEnforcer) restore(app []byte) error {
	if len(app) == 0 {
		return nil
	}
	st := pfeState{Tracker: e.tracker}
	if err := json.Unmarshal(app, &st); err != nil {
		return err
	}
	if st.Acted != nil {
		e.acted = st.Acted
	}
	return nil
}

// line handles one line of the mail log.
func (e *postfixEnforcer) line(line string) error {
	e.prog.dot()
	ev, ok := postfixlog.ParseLine(line)
	if !ok {
		return nil
	}
	e.log.Debug("line", "kind", ev.Kind.String(), "queue", ev.QueueID)
	for _, r := range e.tracker.Add(ev) {
		e.refusal(r)
	}
	return nil
}

// reinjectionWait is how long a refusal of a message from a loopback
// client waits for the content filter's line that names the original
// client (see postfixlog.Tracker).
const reinjectionWait = 30 * time.Second

// atEOF acts on the refusals that waited long enough for a content
// filter's link, or on all of them when the run ends (--once).
func (e *postfixEnforcer) atEOF(final bool) (bool, error) {
	wait := reinjectionWait
	if final {
		wait = 0
	}
	rs := e.tracker.Release(wait)
	for _, r := range rs {
		e.refusal(r)
	}
	return len(rs) > 0, nil
}

// upstreamReply reports whether a refusal came from the upstream: by
// default a reply ending with Gmail's "gsmtp", as relay-enforcer looks for.
func (e *postfixEnforcer) upstreamReply(r postfixlog.Refusal) bool {
	if e.upstream != nil {
		return e.upstream.MatchString(r.Relay)
	}
	s := strings.TrimRight(r.Reply, " .)")
	return len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "gsmtp")
}

// refusal classifies a refusal and acts on it.
func (e *postfixEnforcer) refusal(r postfixlog.Refusal) {
	if !e.upstreamReply(r) {
		e.log.Debug("not from the upstream", "queue", r.QueueID, "relay", r.Relay)
		return
	}
	reply, err := enforce.ParseReply(r.Reply)
	if err != nil {
		e.log.Debug("no reply code", "queue", r.QueueID, "err", err)
		return
	}
	reply.Host = r.RelayHost
	switch r.Stage {
	case "end-of-data":
		reply.Stage = "data"
	case "mail", "rcpt":
		reply.Stage = r.Stage
	}
	v := e.rules.Classify(reply)
	e.log.Debug("refusal", "queue", r.QueueID, "to", r.To, "client", r.ClientIP, "verdict", v.String())
	if v.Action == enforce.None {
		return
	}
	what := v.Rule
	if what == "" {
		what = strconv.Itoa(reply.Code) + " " + reply.Enhanced
	}
	key := r.QueueID + "|" + r.To + "|" + v.Action.String() + "|" + what
	if _, done := e.acted[key]; done {
		e.log.Debug("acted on already", "queue", r.QueueID, "to", r.To, "verdict", v.String())
		return
	}

	ip, _ := netip.ParseAddr(r.ClientIP)
	name := r.ClientName
	if name == "unknown" {
		name = "" // Postfix's name for a client without a verified name
	}
	welcomed := ip.IsValid() && (ip.IsLoopback() || e.welcome.Welcome(ip, name))
	action, why := v.Action, ""
	domain := ""
	switch action {
	case enforce.Ban:
		switch {
		case !ip.IsValid():
			action, why = enforce.Report, "the client is unknown"
		case welcomed:
			action, why = enforce.Encapsulate, "the client is on the welcomelist"
		}
	case enforce.BlockDomain:
		domain = senderDomain(r.From)
		if domain == "" {
			domain = v.Domain
		}
		switch {
		case welcomed:
			action, why = enforce.Encapsulate, "the client is on the welcomelist"
		case domain == "":
			action, why = enforce.Report, "no sender domain to block"
		}
	}
	if action == enforce.Encapsulate && recipientProblem(reply.Enhanced) {
		action, why = enforce.Report, "a recipient problem is never encapsulated"
	}

	a := pfeAction{r: r, v: v, action: action, why: why, ip: ip, domain: domain}
	done := true
	switch action {
	case enforce.Ban:
		done = e.ban(&a)
	case enforce.BlockDomain:
		done = e.blockDomain(&a)
	case enforce.Encapsulate:
		done = e.encapsulate(&a)
	}
	e.logAction(&a)
	if e.o.mailTo != "" {
		e.mailReport(&a)
	}
	if done {
		e.acted[key] = e.now()
	}
}

// pfeAction is one refusal and what is done about it.
type pfeAction struct {
	r      postfixlog.Refusal
	v      enforce.Verdict
	action enforce.Action
	why    string // why the action differs from the verdict's
	ip     netip.Addr
	domain string
	detail []string // more key/value pairs for the log line
	failed string   // the action's error, if it failed
}

func (e *postfixEnforcer) ban(a *pfeAction) bool {
	reason := fmt.Sprintf("%s queue %s to %s", ruleName(a.v), a.r.QueueID, a.r.To)
	line := enforce.BanLine(reason, a.ip)
	if e.o.test {
		return true
	}
	e.bans.add(line)
	return true
}

func (e *postfixEnforcer) blockDomain(a *pfeAction) bool {
	if e.o.test {
		return true
	}
	reason := fmt.Sprintf("%s: queue %s from %s (client %s) refused: %s", ruleName(a.v), a.r.QueueID, a.r.From, a.r.ClientIP, clip(a.r.Reply, 200))
	added, err := enforce.BlockSenderDomain(e.o.senderAccess, a.domain, reason, e.now())
	if err != nil {
		a.failed = err.Error()
		return added // postmap failed after the table was written: done
	}
	if !added {
		a.detail = append(a.detail, "listed", "already")
	}
	return true
}

// encapsulate sends the refused message on, attached to a covering note,
// to the refused recipient. What prevents it turns the action into a
// report; a failure to send leaves it to be tried at the next retry.
func (e *postfixEnforcer) encapsulate(a *pfeAction) bool {
	if e.o.backup == "" {
		a.action, a.why = enforce.Report, "no backup mailbox (-f) to take the message from"
		return true
	}
	if a.r.MessageID == "" {
		a.action, a.why = enforce.Report, "the message id is unknown"
		return true
	}
	orig, err := e.findOriginal(a.r.MessageID)
	if err != nil {
		a.action, a.why = enforce.Report, err.Error()
		return true
	}
	var msg bytes.Buffer
	err = enforce.EncapsulateMessage(&msg, bytes.NewReader(orig), enforce.EncapsulateOptions{
		From: e.o.sender, To: a.r.To, OriginalSender: a.r.From, Reason: a.r.Reply, Client: a.ip, Now: e.now(),
	})
	if errors.Is(err, enforce.ErrEncapsulated) {
		a.action, a.why = enforce.Report, "the message is an encapsulated copy already"
		return true
	}
	if err != nil {
		a.action, a.why = enforce.Report, err.Error()
		return true
	}
	a.detail = append(a.detail, "via", e.o.smtp)
	if e.o.test {
		return true
	}
	if err := e.send([]string{a.r.To}, msg.Bytes()); err != nil {
		a.failed = err.Error()
		return false
	}
	return true
}

// findOriginal takes the message from the backup mailbox, waiting a little
// for a copy that local(8) has not stored yet.
func (e *postfixEnforcer) findOriginal(id string) ([]byte, error) {
	for i := 0; ; i++ {
		orig, err := postfixlog.FindInMbox(e.o.backup, id)
		if err == nil || !errors.Is(err, postfixlog.ErrNotInMbox) || i == 4 {
			return orig, err
		}
		time.Sleep(time.Second)
	}
}

// logAction writes the action's line: "ban client=IP ...", "block-domain
// domain=D ...", "encapsulate to=... ", "report ..."; with -t,
// "would-ban" and so on.
func (e *postfixEnforcer) logAction(a *pfeAction) {
	event := a.action.String()
	if e.o.test {
		event = "would-" + event
	}
	kv := []string{}
	switch a.action {
	case enforce.Ban:
		kv = append(kv, "client", a.ip.String())
	case enforce.BlockDomain:
		kv = append(kv, "domain", a.domain)
	}
	kv = append(kv, "queue", a.r.QueueID)
	if a.action != enforce.Ban {
		kv = append(kv, "client", a.r.ClientIP)
	}
	kv = append(kv, "client_name", a.r.ClientName, "from", maillog.Addr(a.r.From), "to", maillog.Addr(a.r.To))
	if a.r.OrigQueueID != "" {
		kv = append(kv, "orig_queue", a.r.OrigQueueID)
	}
	kv = append(kv, "msgid", a.r.MessageID, "status", a.r.Status, "stage", a.r.Stage, "rule", ruleName(a.v))
	if a.why != "" {
		kv = append(kv, "why", a.why)
	}
	kv = append(kv, a.detail...)
	if a.failed != "" {
		kv = append(kv, "error", a.failed)
		e.log.Error("action failed", "action", a.action.String(), "queue", a.r.QueueID, "err", a.failed)
	}
	kv = append(kv, "reply", a.r.Reply)
	e.actions.Companion(event, kv...)
}

// mailReport mails the administrator (-m) what was done.
func (e *postfixEnforcer) mailReport(a *pfeAction) {
	subject := fmt.Sprintf("relaykeeper postfix-enforcer: %s, queue %s to %s", a.action, a.r.QueueID, a.r.To)
	var body strings.Builder
	fmt.Fprintf(&body, "%s on %s did: %s\n", "relaykeeper postfix-enforcer", e.host, a.action)
	if a.why != "" {
		fmt.Fprintf(&body, "(instead of %s: %s)\n", a.v.Action, a.why)
	}
	if a.failed != "" {
		fmt.Fprintf(&body, "It failed: %s\n", a.failed)
	}
	fmt.Fprintf(&body, "\nRule:       %s\nQueue id:   %s\n", ruleName(a.v), a.r.QueueID)
	if a.r.OrigQueueID != "" {
		fmt.Fprintf(&body, "Original:   %s (before the content filter)\n", a.r.OrigQueueID)
	}
	fmt.Fprintf(&body, "Client:     %s [%s]\nFrom:       <%s>\nTo:         <%s>\nMessage-ID: <%s>\nRelay:      %s\nStatus:     %s\n",
		a.r.ClientName, a.r.ClientIP, a.r.From, a.r.To, a.r.MessageID, a.r.Relay, a.r.Status)
	if a.domain != "" {
		fmt.Fprintf(&body, "Domain:     %s (%s)\n", a.domain, e.o.senderAccess)
	}
	fmt.Fprintf(&body, "\nThe upstream's reply:\n\n  %s\n", a.r.Reply)
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.%d.pfe@%s>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		e.o.sender, e.o.mailTo, subject, e.now().Format(time.RFC1123Z), e.now().UnixNano(), os.Getpid(), e.host,
		strings.ReplaceAll(body.String(), "\n", "\r\n"))
	if e.o.test {
		return
	}
	if err := e.send([]string{e.o.mailTo}, []byte(msg)); err != nil {
		e.log.Error("mailing the report", "to", e.o.mailTo, "err", err)
	}
}

// send submits a message over SMTP to --smtp, from --sender.
func (e *postfixEnforcer) send(to []string, msg []byte) error {
	from := e.o.sender
	if a, err := mail.ParseAddress(from); err == nil {
		from = a.Address
	}
	conn, err := net.DialTimeout("tcp", e.o.smtp, 30*time.Second)
	if err != nil {
		return fmt.Errorf("sending to %s: %w", e.o.smtp, err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello(e.host); err != nil {
		return fmt.Errorf("sending to %s: %w", e.o.smtp, err)
	}
	opts := &smtp.MailOptions{}
	if has8bit(msg) {
		if ok, _ := c.Extension("8BITMIME"); ok {
			opts.Body = smtp.Body8BitMIME
		}
	}
	if err := c.Mail(from, opts); err != nil {
		return fmt.Errorf("sending to %s: %w", e.o.smtp, err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return fmt.Errorf("sending to %s: %w", e.o.smtp, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("sending to %s: %w", e.o.smtp, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("sending to %s: %w", e.o.smtp, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("sending to %s: %w", e.o.smtp, err)
	}
	c.Quit()
	return nil
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func ruleName(v enforce.Verdict) string {
	if v.Rule == "" {
		return "none"
	}
	return v.Rule
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// senderDomain is the domain of an envelope sender, seen through an SRS
// address (postsrsd): "SRS0=HHHH=TT=example.com=alice@relay.example" is
// example.com's. "" for the null sender.
func senderDomain(from string) string {
	at := strings.LastIndexByte(from, '@')
	if at < 0 {
		return ""
	}
	local, domain := from[:at], from[at+1:]
	if len(local) > 5 && strings.EqualFold(local[:5], "SRS0=") {
		// SRS0=HASH=TT=domain=local
		if f := strings.SplitN(local[5:], "=", 4); len(f) == 4 && f[2] != "" {
			return strings.ToLower(f[2])
		}
	} else if len(local) > 5 && strings.EqualFold(local[:5], "SRS1=") {
		// SRS1=HASH=forwarder==HASH=TT=domain=local
		if _, rest, ok := strings.Cut(local, "=="); ok {
			if f := strings.SplitN(rest, "=", 4); len(f) == 4 && f[2] != "" {
				return strings.ToLower(f[2])
			}
		}
	}
	return strings.ToLower(strings.TrimSuffix(domain, "."))
}

// recipientProblem reports whether an enhanced status code blames the
// recipient (RFC 3463: X.1.1 to X.1.6 addressing, X.2.* mailbox): such a
// refusal is never encapsulated, whatever the rules say.
func recipientProblem(enh string) bool {
	f := strings.Split(enh, ".")
	if len(f) != 3 {
		return false
	}
	switch f[1] {
	case "1":
		n, _ := strconv.Atoi(f[2])
		return n >= 1 && n <= 6
	case "2":
		return true
	}
	return false
}

// banWriter writes a fail2ban ban line.
type banWriter interface {
	writeBan(line string) error
}

// syslogBans sends ban lines to syslog under relay-enforcer's tag, with
// the priority logger(1) gives (user.notice), as relay-enforcer does.
type syslogBans struct{ w *syslog.Writer }

func (s syslogBans) writeBan(line string) error { return s.w.Notice(line) }

// fileBans appends ban lines to a file (or stderr) in syslog's format, so
// that relay-enforcer's fail2ban filter reads them as they are.
type fileBans struct {
	path string    // "" for w
	w    io.Writer // used when path is ""
	host string
	now  func() time.Time
}

func (f fileBans) writeBan(line string) error {
	s := fmt.Sprintf("%s %s %s[%d]: %s\n", f.now().Format(time.Stamp), f.host, enforce.SyslogTag, os.Getpid(), line)
	if f.path == "" {
		_, err := io.WriteString(f.w, s)
		return err
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(s)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// openBanWriter returns where ban lines go: --ban-log, else syslog, else
// (said so) stderr.
func openBanWriter(path, host string, diag *slog.Logger) (banWriter, error) {
	if path != "" {
		return fileBans{path: path, host: host, now: time.Now}, nil
	}
	w, err := syslog.New(syslog.LOG_USER|syslog.LOG_NOTICE, enforce.SyslogTag)
	if err != nil {
		diag.Warn("syslog is unavailable; ban lines go to the standard error", "err", err)
		return fileBans{w: os.Stderr, host: host, now: time.Now}, nil
	}
	return syslogBans{w}, nil
}

// delayedBans writes ban lines after a delay (relay-enforcer's 10 s: the
// ban then counts new attempts only), without holding up the log.
type delayedBans struct {
	w     banWriter
	delay time.Duration
	log   *slog.Logger
	ch    chan delayedBan
	done  chan struct{}
	once  sync.Once
}

type delayedBan struct {
	due  time.Time
	line string
}

func newDelayedBans(w banWriter, delay time.Duration, log *slog.Logger) *delayedBans {
	d := &delayedBans{w: w, delay: delay, log: log, ch: make(chan delayedBan, 1024), done: make(chan struct{})}
	// The goroutine ends when close has closed ch and every ban is written.
	go d.run()
	return d
}

func (d *delayedBans) add(line string) {
	d.ch <- delayedBan{due: time.Now().Add(d.delay), line: line}
}

func (d *delayedBans) run() {
	defer close(d.done)
	for b := range d.ch {
		if wait := time.Until(b.due); wait > 0 {
			time.Sleep(wait)
		}
		if err := d.w.writeBan(b.line); err != nil {
			d.log.Error("writing a ban line", "line", b.line, "err", err)
		}
	}
}

// close writes the bans still waiting, when due, and returns.
func (d *delayedBans) close() {
	d.once.Do(func() {
		close(d.ch)
		<-d.done
	})
}

// lockInstance takes the instance lock (an flock on the pid file, which
// then holds this process's pid); another enforcer on the same state holds
// it already unless -r stopped it.
func lockInstance(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(f)
		f.Close()
		return nil, fmt.Errorf("another postfix-enforcer (pid %s) uses %s; -r replaces it, -s stops it", strings.TrimSpace(string(b)), path)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// stopOther stops the enforcer that holds the lock at path (-s, -r): it
// sends SIGTERM to the pid in the file, if that process holds the lock and
// is a postfix-enforcer, and waits up to 15 seconds for the lock.
func stopOther(path string, stderr io.Writer) error {
	free := func() bool {
		f, err := os.Open(path)
		if err != nil {
			return true
		}
		defer f.Close()
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			return false
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return true
	}
	if free() {
		fmt.Fprintln(stderr, "relaykeeper postfix-enforcer: no other instance is running")
		return nil
	}
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("%s is locked but holds no pid", path)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !bytes.Contains(cmdline, []byte("postfix-enforcer")) {
		return fmt.Errorf("pid %d in %s is not a postfix-enforcer", pid, path)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if free() {
			fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: stopped pid %d\n", pid)
			return nil
		}
	}
	return fmt.Errorf("pid %d did not stop within 15 seconds", pid)
}

// progress is -v's output, as relay-enforcer's: a dot per log line read,
// and a new line starting with the time at each new hour. A nil w writes
// nothing.
type progress struct {
	w       io.Writer
	now     func() time.Time
	mu      sync.Mutex // guards the fields below
	hour    time.Time
	pending bool // dots written since the last newline
}

func (p *progress) dot() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if h := now.Truncate(time.Hour); !h.Equal(p.hour) {
		if p.pending {
			io.WriteString(p.w, "\n")
		}
		p.hour = h
		io.WriteString(p.w, now.Format("2006-01-02 15:04:05 "))
	}
	io.WriteString(p.w, ".")
	p.pending = true
}

// breakLine ends a line of dots, so that what follows starts a line.
func (p *progress) breakLine() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		io.WriteString(p.w, "\n")
		p.pending = false
		p.hour = time.Time{}
	}
}

// lineBreaker writes to w after ending progress's line of dots.
type lineBreaker struct {
	p *progress
	w io.Writer
}

func (l *lineBreaker) Write(b []byte) (int, error) {
	l.p.breakLine()
	return l.w.Write(b)
}
