// Package companion is relaykeeper postfix-enforcer's engine: it follows
// the refusals that internal/postfixlog finds in Postfix's mail log and
// carries out internal/enforce's plan for each, as relay-enforcer does for
// a Postfix that relays to Gmail. The decision is enforce.Decide, the same
// as the relay's; only where the refusal comes from and how its plan is
// carried out differ:
//
//   - ban: relay-enforcer's "bannable REASON IP" line for fail2ban, through
//     the one enforce.BanWriter, when the ban takes effect;
//   - block-domain: an entry in Postfix's sender_access, then postmap;
//   - encapsulate: the message, taken from the backup mailbox
//     (always_bcc), sent on attached to a note over SMTP;
//   - report, alert: a line, and mail to the administrator (-m); an alert
//     once per cause per hour; pace: a line (Postfix paces itself).
//
// A Companion runs on one goroutine, the log follower's: it is not safe
// for concurrent use. What it acted on is saved with the log position
// (Checkpoint), so that a deferral seen again on a retry, or a line read
// again after a crash, is not acted on twice.
package companion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Options configure a Companion.
type Options struct {
	// Test: say what would be done ("would-ban"), change nothing, send
	// nothing.
	Test bool
	// Backup is the mbox that keeps a copy of every relayed message
	// (always_bcc); needed to encapsulate.
	Backup string
	// MailTo, if set, is mailed a report of each action.
	MailTo string
	// SenderAccess is the access table domains are blocked in.
	SenderAccess string
	// SMTP is where encapsulated copies and reports are sent, from Sender;
	// Host is this machine's name (HELO, reports).
	SMTP, Sender, Host string
	// Upstream, if set, picks the refusals to act on by their relay
	// ("host[ip]:port"); nil: replies ending in Gmail's "gsmtp".
	Upstream *regexp.Regexp
	// BanDelay is how long after the refusal a ban takes effect.
	BanDelay time.Duration
	// BanWidth is how wide a ban is (--ban-ipv4-prefix-length,
	// --ban-ipv6-prefix-length; zero: an IPv4 address, an IPv6 /64), and
	// Spare what no ban of a network may cover (the welcomelist's
	// addresses, Postfix's mynetworks): see enforce.BanNet.
	BanWidth enforce.BanWidth
	Spare    enforce.Sparer
}

// Companion acts on the refusals in Postfix's mail log.
type Companion struct {
	opts    Options
	policy  enforce.Policy
	tracker *postfixlog.Tracker
	bans    *enforce.BanWriter // nil in test mode
	actions *maillog.Logger    // one line per action
	log     *slog.Logger
	now     func() time.Time
	alerts  enforce.AlertLimiter
	// acted holds what was done, by queue id and plan key, and when.
	acted actedSet
	// unread counts Postfix's lines (they name a postfix/ program) that
	// did not parse, while none has: a log in a format this does not
	// read, which would otherwise act on nothing without a word.
	unread, read int
	// unsaved: something was done since the last Checkpoint that must
	// not be done again (Unsaved).
	unsaved bool
}

// unreadWarnAt is how many of Postfix's lines go unread, none read,
// before the log's format is called into question, once.
const unreadWarnAt = 100

// actedTTL is how long an action is remembered: longer than Postfix keeps
// a deferred message (maximal_queue_lifetime, 5 days by default).
const actedTTL = 10 * 24 * time.Hour

// maxActed bounds the actions remembered.
const maxActed = 100000

// New returns a Companion deciding by policy, following messages with
// tracker, writing ban lines to bans (nil in test mode) and a line per
// action to actions.
func New(opts Options, policy enforce.Policy, tracker *postfixlog.Tracker, bans *enforce.BanWriter,
	actions *maillog.Logger, log *slog.Logger) *Companion {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Companion{opts: opts, policy: policy, tracker: tracker, bans: bans, actions: actions, log: log,
		now: time.Now, acted: actedSet{}}
}

// state is the companion's part of the state file.
type state struct {
	Acted   map[string]time.Time `json:"acted"`
	Tracker *postfixlog.Tracker  `json:"tracker"`
	// Bans are the bans acted on whose lines are not written yet (the
	// ban delay): a restart writes them, though the refusals are read.
	Bans []enforce.WaitingBan `json:"bans,omitempty"`
}

// Checkpoint returns the companion's state, for the follower to save with
// its position.
func (c *Companion) Checkpoint() ([]byte, error) {
	c.acted.prune(c.now().Add(-actedTTL), maxActed)
	c.unsaved = false
	st := state{Acted: c.acted.flat(), Tracker: c.tracker}
	if c.bans != nil {
		st.Bans = c.bans.Waiting()
	}
	return json.Marshal(st)
}

// Restore takes back what Checkpoint saved.
func (c *Companion) Restore(app []byte) error {
	if len(app) == 0 {
		return nil
	}
	st := state{Tracker: c.tracker}
	if err := json.Unmarshal(app, &st); err != nil {
		return fmt.Errorf("companion: state: %w", err)
	}
	if st.Acted != nil {
		c.acted = fromFlat(st.Acted)
	}
	if c.bans != nil && !c.opts.Test {
		for _, b := range st.Bans {
			c.bans.Add(b.Due, b.Event)
		}
	}
	return nil
}

// Line handles one line of the mail log.
func (c *Companion) Line(line string) error {
	ev, ok := postfixlog.ParseLine(line)
	if !ok {
		if ev, ok := postfixlog.ParseCut(line); ok {
			c.tracker.Cut(ev)
			c.cut(ev)
			return nil
		}
		if c.read == 0 && strings.Contains(line, "postfix/") {
			if c.unread++; c.unread == unreadWarnAt {
				c.log.Warn("none of Postfix's lines in the log has been read: its format is not one postfix-enforcer knows (docs/postfix-enforcer.md, How it reads the log)",
					"lines", c.unread, "example", table.Printable(clipLine(line)))
			}
		}
		return nil
	}
	c.read++
	c.log.Debug("line", "kind", ev.Kind.String(), "queue", ev.QueueID)
	for _, r := range c.tracker.Add(ev) {
		c.refusal(r)
	}
	return nil
}

// cut reports a delivery line that Postfix cut at 2000 bytes, or the
// syslog daemon shorter: if it was a refusal, its reply is lost and
// nothing can be done about it but say so, naming the client.
func (c *Companion) cut(ev postfixlog.Event) {
	ip, name := c.tracker.Client(ev.QueueID)
	event := "report"
	if c.opts.Test {
		event = "would-report"
	}
	why := fmt.Sprintf("Postfix cut the delivery line at %d bytes: its status and reply are lost", postfixlog.MaxLogText)
	if ev.Cut < postfixlog.MaxLogText {
		why = fmt.Sprintf("the delivery line ends at %d bytes of text, before its status or its reply's end: the syslog daemon cut it (it must take %d), its status and reply are lost",
			ev.Cut, postfixlog.MaxLogText)
	}
	c.actions.Companion(event, "queue", ev.QueueID, "client", ip, "client_name", name, "to", maillog.Addr(ev.To), "why", why)
}

// clipLine is the start of a log line, for a diagnostic.
func clipLine(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// reinjectionWait is how long a refusal of a message from a loopback
// client waits for the content filter's line that names the original
// client (see postfixlog.Tracker).
const reinjectionWait = 30 * time.Second

// AtEOF acts on the refusals that waited long enough for a content
// filter's link, or on all of them when the run ends (final).
func (c *Companion) AtEOF(final bool) (bool, error) {
	wait := reinjectionWait
	if final {
		wait = 0
	}
	rs := c.tracker.Release(wait)
	for _, r := range rs {
		c.refusal(r)
	}
	return len(rs) > 0, nil
}

// upstreamReply reports whether a refusal came from the upstream: by
// default a reply ending with Gmail's "gsmtp", as relay-enforcer looks for.
// reply is the refusal's reply without relay-enforcer's marker (see
// withoutFilterMark). A '?' after the marker is whitespace that Postfix
// censored (a tab at the end of Gmail's last line: "- gsmtp  ?").
func (c *Companion) upstreamReply(r postfixlog.Refusal, reply string) bool {
	if c.opts.Upstream != nil {
		return c.opts.Upstream.MatchString(r.Relay)
	}
	s := strings.TrimRight(reply, " .)?")
	return len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "gsmtp")
}

// withoutFilterMark gives back Gmail's reply that relay-enforcer's
// smtp_reply_filter (smtp_dsn_rw_filter.pcre) rewrote: Postfix logs the
// reply as filtered, and the filter's "generic", "bulk" and "unsol" rules
// make Gmail's last line "421 4.X.Y ... - gsmtp" into "554 5.X.Y ... -
// gsmtp-fmod_generic". The marker goes, and the last line gets its code
// back, so that the reply reads as Gmail sent it (a phrase that the last
// line's prefix cuts is whole again).
func withoutFilterMark(reply string) string {
	i := strings.LastIndex(reply, "gsmtp-fmod_")
	if i < 0 {
		return reply
	}
	mark := reply[i+len("gsmtp-fmod_"):]
	if mark == "" || strings.Trim(mark, "abcdefghijklmnopqrstuvwxyz") != "" {
		return reply
	}
	reply = reply[:i+len("gsmtp")]
	if mark == "generic" || mark == "bulk" || mark == "unsol" {
		if m := filteredLastLine.FindAllStringSubmatchIndex(reply, -1); m != nil {
			last := m[len(m)-1]
			reply = reply[:last[2]] + "421 4." + reply[last[2]+len("554 5."):]
		}
	}
	return reply
}

// filteredLastLine is the prefix relay-enforcer's filter gives Gmail's last
// line: at the start of the reply, or after a space in the reply as
// Postfix logs it.
var filteredLastLine = regexp.MustCompile(`(?:^|\s)(554 5\.\d{1,3}\.\d{1,3}) `)

// refusal decides what to do about a refusal (enforce.Decide) and does it.
func (c *Companion) refusal(r postfixlog.Refusal) {
	text := withoutFilterMark(r.Reply)
	if !c.upstreamReply(r, text) {
		c.log.Debug("not from the upstream", "queue", r.QueueID, "relay", r.Relay)
		return
	}
	up, err := enforce.ParseReply(text)
	if err != nil {
		c.log.Debug("no reply code", "queue", r.QueueID, "err", err)
		return
	}
	up.Host = r.RelayHost
	switch r.Stage {
	case "end-of-data":
		up.Stage = "data"
	case "data":
		// "(in reply to DATA command)": before the content went.
		up.Stage = "data command"
	default:
		// "mail", "rcpt", and before the transaction "connect", "helo",
		// "starttls", "auth": Decide sanctions nobody for those.
		up.Stage = r.Stage
	}
	ip, _ := netip.ParseAddr(r.ClientIP)
	name := r.ClientName
	if name == "unknown" {
		name = "" // Postfix's name for a client without a verified name
	}
	done := c.acted.keys(r.QueueID)
	rf := enforce.Refusal{ID: r.QueueID, Client: ip, ClientName: name,
		// pickup logged the message (sendmail): Postfix's local
		// submission. A message whose first line the log does not hold
		// has an unknown client, not a local one: its ban or block is
		// reported.
		Local: r.Local,
		// A null sender with neither a client nor pickup's line: a
		// notice Postfix made itself (bounce, delay, postmaster). Or
		// one of ours: an encapsulated copy or a report, submitted
		// from --sender over loopback (--smtp). A message none of
		// whose lines the log held (postfix-enforcer started after
		// them) is of an unknown client, not Postfix's.
		Own:  r.From == "" && r.FromKnown && !r.Local && r.ClientIP == "" && r.OrigQueueID == "" || c.own(r),
		From: r.From, To: []string{r.To}, Upstream: up, UpstreamIP: relayIP(r.Relay), Done: done}
	pl := enforce.Decide(c.policy, rf)
	c.log.Debug("refusal", "queue", r.QueueID, "to", r.To, "client", r.ClientIP, "verdict", pl.Verdict.String(),
		"action", pl.Action.String(), "repeat", pl.Repeat)
	if pl.Repeat || pl.Action == enforce.None {
		return
	}
	a := action{r: r, pl: pl, action: pl.Action, why: pl.Why}
	if r.Reinjected != "" {
		a.detail = append(a.detail, "reinjected", r.Reinjected)
	}
	ok := true
	switch a.action {
	case enforce.Ban:
		// One refusal at the final dot is every recipient's, and
		// Postfix logs it for each: the client is banned once for it
		// (one line, one fail2ban line, one report), as by the relay.
		once := "ban " + pl.Client.String() + " " + pl.Verdict.Rule
		if t, ok := c.acted.get(r.QueueID, once); ok && c.now().Sub(t) < time.Minute {
			c.acted.set(r.QueueID, pl.Key, c.now())
			return
		}
		c.acted.set(r.QueueID, once, c.now())
		c.ban(&a)
	case enforce.BlockDomain:
		ok = c.blockDomain(&a)
	case enforce.Encapsulate:
		ok = c.encapsulate(&a)
	case enforce.Alert:
		// Once an hour per rule for Gmail's own words, and per rule
		// for the others' (enforce.AlertCause), as the relay counts.
		if !c.alerts.Due(enforce.AlertCause(c.policy, rf, pl.Verdict.Rule), c.now()) {
			c.acted.set(r.QueueID, pl.Key, c.now())
			return // told within the hour already
		}
	}
	c.logAction(&a)
	mailed := c.opts.MailTo != "" && a.action != enforce.Pace
	if mailed {
		c.mailReport(&a)
	}
	if ok {
		c.acted.set(r.QueueID, pl.Key, c.now())
		// A copy or a mail is saved at once. A line (pace, a report
		// without -m), a ban (fail2ban bans an address once) or a block
		// (a domain is listed once) may come again after a crash.
		c.unsaved = c.unsaved || mailed || a.action == enforce.Encapsulate
	}
}

// Unsaved reports whether the companion did something since its last
// Checkpoint that must not be done again after a crash: an encapsulated
// copy sent, or a mail (postfixlog.Follower.Unsaved).
func (c *Companion) Unsaved() bool { return c.unsaved }

// own reports whether r is of a message the companion made: from --sender,
// submitted over loopback (--smtp, 127.0.0.1:25 by default). The same
// sender from any other client is a forgery.
func (c *Companion) own(r postfixlog.Refusal) bool {
	if c.opts.Sender == "" || !strings.EqualFold(r.From, c.opts.Sender) {
		return false
	}
	ip, err := netip.ParseAddr(r.ClientIP)
	return err == nil && ip.IsLoopback()
}

// relayIP is the address of a relay as Postfix logs it ("name[ip]:port"),
// "" if none.
func relayIP(relay string) string {
	_, rest, ok := strings.Cut(relay, "[")
	ip, _, ok2 := strings.Cut(rest, "]")
	if !ok || !ok2 {
		return ""
	}
	return ip
}

// action is one refusal and what is done about it.
type action struct {
	r      postfixlog.Refusal
	pl     enforce.Plan
	action enforce.Action // the plan's, or report when it could not be done
	why    string         // why the action differs from the verdict's
	detail []string       // more key/value pairs for the log line
	failed string         // the action's error, if it failed
}

func (c *Companion) ban(a *action) {
	if c.opts.Test {
		return
	}
	reason := fmt.Sprintf("%s queue %s to %s", ruleName(a.pl.Verdict), a.r.QueueID, banRecipient(a.r.To))
	c.bans.Add(c.now().Add(c.opts.BanDelay), enforce.BanEvent{Client: a.pl.Client, Net: c.banNet(a), Reason: reason,
		Rule: a.pl.Verdict.Rule, ID: a.r.QueueID, Reply: a.r.Reply})
}

func (c *Companion) blockDomain(a *action) bool {
	if c.opts.Test {
		return true
	}
	reason := fmt.Sprintf("%s: queue %s from %s (client %s) refused: %s", ruleName(a.pl.Verdict), a.r.QueueID, a.r.From,
		a.r.ClientIP, clip(a.r.Reply, 200))
	// Postfix reads hash:PATH: the table is indexed with postmap.
	added, err := enforce.BlockSenderDomain(c.opts.SenderAccess, a.pl.Domain, reason, c.now())
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
func (c *Companion) encapsulate(a *action) bool {
	if c.opts.Backup == "" {
		a.action, a.why = enforce.Report, "no backup mailbox (-f) to take the message from"
		return true
	}
	if a.r.MessageID == "" {
		a.action, a.why = enforce.Report, "the message id is unknown"
		return true
	}
	orig, err := c.findOriginal(a.r.MessageID, a.r.QueueID, a.r.OrigQueueID)
	if err != nil {
		a.action, a.why = enforce.Report, err.Error()
		return true
	}
	var msg bytes.Buffer
	err = enforce.EncapsulateMessage(&msg, bytes.NewReader(orig), enforce.EncapsulateOptions{
		From: c.opts.Sender, To: a.r.To, OriginalSender: a.r.From, Reason: a.r.Reply, Client: a.pl.Client, Now: c.now(),
	})
	if errors.Is(err, enforce.ErrEncapsulated) {
		a.action, a.why = enforce.Report, "the message is an encapsulated copy already"
		return true
	}
	if err != nil {
		a.action, a.why = enforce.Report, err.Error()
		return true
	}
	a.detail = append(a.detail, "via", c.opts.SMTP)
	if c.opts.Test {
		return true
	}
	if err := c.send([]string{a.r.To}, msg.Bytes()); err != nil {
		a.failed = err.Error()
		return false
	}
	return true
}

// findOriginal takes the message from the backup mailbox, waiting a little
// for a copy that local(8) has not stored yet.
func (c *Companion) findOriginal(id string, queueIDs ...string) ([]byte, error) {
	for i := 0; ; i++ {
		orig, err := postfixlog.FindInMbox(c.opts.Backup, id, queueIDs...)
		if err == nil || !errors.Is(err, postfixlog.ErrNotInMbox) || i == 4 {
			return orig, err
		}
		time.Sleep(time.Second)
	}
}

// logAction writes the action's line: "ban client=IP ...", "block-domain
// domain=D ...", "encapsulate to=... ", "report ...", "alert ...",
// "pace ..."; in test mode "would-ban" and so on.
func (c *Companion) logAction(a *action) {
	event := a.action.String()
	if c.opts.Test {
		event = "would-" + event
	}
	kv := []string{}
	switch a.action {
	case enforce.Ban:
		kv = append(kv, "client", a.pl.Client.String(), "prefix", c.banNet(a).String())
	case enforce.BlockDomain:
		kv = append(kv, "domain", a.pl.Domain)
	}
	kv = append(kv, "queue", a.r.QueueID)
	if a.action != enforce.Ban {
		kv = append(kv, "client", a.r.ClientIP)
	}
	kv = append(kv, "client_name", a.r.ClientName, "from", maillog.Addr(a.r.From), "to", maillog.Addr(a.r.To))
	if a.r.OrigQueueID != "" {
		kv = append(kv, "orig_queue", a.r.OrigQueueID)
	}
	kv = append(kv, "msgid", a.r.MessageID, "status", a.r.Status, "stage", a.r.Stage, "rule", ruleName(a.pl.Verdict))
	if a.why != "" {
		kv = append(kv, "why", a.why)
	}
	kv = append(kv, a.detail...)
	if a.failed != "" {
		kv = append(kv, "error", a.failed)
		c.log.Error("action failed", "action", a.action.String(), "queue", a.r.QueueID, "err", a.failed)
	}
	kv = append(kv, "reply", a.r.Reply)
	c.actions.Companion(event, kv...)
}

// banNet is the network a ban of the action's client covers.
func (c *Companion) banNet(a *action) netip.Prefix {
	return enforce.BanNet(a.pl.Client, c.opts.BanWidth, c.opts.Spare)
}

// maxBanRecipient is how much of the refused recipient the ban line
// names. The line goes to syslog, and BusyBox's syslogd keeps 256 bytes
// of a message by default, its header included ("<13>Dec  7 10:00:10
// relay-enforcer[4194304]: ", 45 bytes): with the keyword, a rule's name,
// the queue id and an IPv6 address the line stays within them.
const maxBanRecipient = 64

// banRecipient is the recipient as the ban line names it: text the client
// chose, so cut to maxBanRecipient bytes, and with no space in it. A
// syslog daemon that cut the line within a longer recipient dropped the
// client's address that ends it (the spammer was not banned), and one
// that cut it right after " 198.51.100.7" in a quoted recipient had
// fail2ban ban that address (its filter bans the line's last word).
func banRecipient(to string) string {
	to = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '?'
		}
		return r
	}, to)
	if len(to) > maxBanRecipient {
		cut := maxBanRecipient - len("...")
		for cut > 0 && !utf8.RuneStart(to[cut]) {
			cut--
		}
		to = to[:cut] + "..."
	}
	return to
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
