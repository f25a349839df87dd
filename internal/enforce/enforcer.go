package enforce

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Kicker wakes the delivery scheduler after a message was queued
// (*deliver.Scheduler).
type Kicker interface {
	Kick(force bool)
}

// VerdictCounter counts the verdicts on upstream refusals
// (*metrics.Metrics): code is the reply code, verdict the action's name.
type VerdictCounter interface {
	Verdict(code int, verdict string)
}

// TableReloader asks for the relay's lookup tables to be read again after
// the enforcer changed one (*reload.Runner): a blocked domain is refused
// within moments, and the table is read outside the delivery worker.
type TableReloader interface {
	Request()
}

// Enforcer carries out Decide's plans for the relay itself
// (store-and-forward and proxy); the Postfix companion carries out the same
// plans its own way (internal/companion). Its zero value decides by no
// rules and does nothing; set the fields before first use.
type Enforcer struct {
	// Policy is what Decide decides by.
	Policy Policy
	Bans   *Bans
	// BanLines writes the ban event and fail2ban's line when a ban takes
	// effect; nil writes none.
	BanLines *BanWriter
	// SenderAccess is the access table the enforcer blocks domains in,
	// which the relay reads as text (no postmap needed).
	SenderAccess string
	BanTime      time.Duration
	// Spool receives encapsulated copies and reports; Queue, if set, is
	// kicked after one is queued.
	Spool *spool.Spool
	Queue Kicker
	// Tables, if set, is asked to reload after a domain was blocked.
	Tables TableReloader
	// Metrics, if set, counts every verdict.
	Metrics VerdictCounter
	// RelayAddress sends encapsulated copies and reports
	// ("postmaster@relay.example"); it is also their envelope sender.
	RelayAddress string
	// EncapsulateRateLimit is how many encapsulated copies (one per
	// refused recipient) one client's mail may make in an hour; past it,
	// a refused message is not encapsulated: its sender hears the
	// refusal, and the administrator a report. A refusal needing more
	// copies goes when the client's bucket is full, the rest owed
	// (encapLimiter). Zero or less: no limit.
	EncapsulateRateLimit int
	// Signer, if set, DKIM-signs encapsulated copies as the relay's
	// domain ([dkim]), so that they pass the upstream's checks themselves.
	Signer Signer
	// Admin, if set, gets a report of every action and every refusal no
	// rule knows (relay-enforcer's -m), and the alerts.
	Admin   string
	MailLog *maillog.Logger
	Log     *slog.Logger
	Now     func() time.Time

	alerts AlertLimiter
	// encaps counts each client's encapsulated copies.
	encaps encapLimiter
	// reports: the administrator hears of one kind of report (the rule,
	// and the verdict it gave) once an hour; the mail log has every one.
	// Not the reason's text: it names hosts and domains a client picks. An upstream that
	// answers everything with a reply no rule knows would otherwise mail
	// the administrator once per refused message. As for alerts, the
	// untrusted upstreams have an hour of their own (cause).
	reports AlertLimiter
	// sessionAlerts: the alert lines of ActOnSession, once a minute per
	// upstream and rule.
	sessionAlerts AlertLimiter
	// inForce: the bans in force at ReloadBans' last call, by IP, with
	// their ends; only ReloadBans uses it, under banMu (the table timer
	// and the admin interface both reload).
	banMu   sync.Mutex
	inForce map[netip.Prefix]inForceBan
	// bannedFor: the bans just made, by message, client and rule, and
	// the verdicts just counted, by message and refusal, with when
	// (guarded by banMu). One refusal at the final dot is every
	// recipient's, and the scheduler hands the enforcer each recipient
	// in turn: the client is banned once for it, with one ban line and
	// one report, and the verdict counted once, not one per recipient.
	bannedFor map[string]time.Time
	// holdPending: messages of a client banned while they were being
	// delivered, to be held when they come back (guarded by banMu; see
	// markPending).
	holdPending map[string]netip.Addr
	// banning counts the bans between markPending and holdMarked
	// (guarded by banMu): their clients' entries in holdPending are not
	// forgotten as "not banned" meanwhile (pendingHold, holdLater).
	banning int
	// anyPending says holdPending is not empty, for HoldNow, which the
	// queue calls at every claim, to answer without banMu.
	anyPending atomic.Bool
}

// banRepeatWindow is how long a ban for a message's refusal stands for the
// same refusal of its other recipients (all handed over in one attempt).
const banRepeatWindow = time.Minute

// bannedAlready reports whether the client was banned for this message's
// refusal by this rule a moment ago, and if not, remembers that it is now.
func (e *Enforcer) bannedAlready(id string, ip netip.Addr, rule string, now time.Time) bool {
	return e.seenAlready("ban "+id+" "+ip.String()+" "+rule, now) && id != ""
}

// countedAlready reports whether the verdict on this message's refusal was
// counted a moment ago, for another of its recipients. A reply to the
// message as a whole (its final dot, DATA, MAIL) is one refusal, and the
// metrics count it once; a reply to RCPT is that recipient's own.
func (e *Enforcer) countedAlready(rf Refusal, pl Plan, now time.Time) bool {
	if rf.ID == "" || rf.Stage == "rcpt" {
		return false
	}
	return e.seenAlready("verdict "+rf.ID+" "+rf.Stage+" "+Key(pl.Verdict, "", rf.Reply), now)
}

// seenAlready reports whether k was seen within banRepeatWindow, and
// remembers that it is now.
func (e *Enforcer) seenAlready(k string, now time.Time) bool {
	e.banMu.Lock()
	defer e.banMu.Unlock()
	for k, t := range e.bannedFor {
		if now.Sub(t) >= banRepeatWindow || now.Before(t) {
			delete(e.bannedFor, k)
		}
	}
	if _, ok := e.bannedFor[k]; ok {
		return true
	}
	if e.bannedFor == nil {
		e.bannedFor = map[string]time.Time{}
	}
	e.bannedFor[k] = now
	return false
}

// Outcome says what the enforcer did and what becomes of the refused
// recipients.
type Outcome struct {
	Plan Plan
	// Encapsulated: copies went to every recipient in To; they count as
	// delivered.
	Encapsulated bool
	// Banned: the client is banned; its queued mail is being held.
	Banned bool
	// Heard is the reply for the original client after reply rewriting.
	Heard reply.Reply
	// Hold: hold the rest of the message instead of retrying it.
	Hold bool
	// Settle, if set, is the refused recipients' new status: spool.Sent
	// (delivered encapsulated), spool.Bounced (a temporary refusal made
	// permanent) or spool.Deferred (pace, alert: the mail is kept whatever
	// the code said); SettleReply is its reply.
	Settle      spool.RcptStatus
	SettleReply string
}

func (e *Enforcer) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Enforcer) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Refused is the scheduler's entry for one refused recipient of a queued
// message: Act. The caller records Outcome.Plan.Key with the message and
// passes the keys back in Refusal.Done, so that a refusal seen again on a
// retry is not acted on twice.
func (e *Enforcer) Refused(ctx context.Context, rf Refusal) Outcome {
	return e.Act(ctx, rf)
}

// Act decides what to do about a refusal (Decide) and does it.
func (e *Enforcer) Act(ctx context.Context, rf Refusal) Outcome {
	if rf.Reply.Code == 0 {
		if u, err := ParseReply(rf.Reply.String()); err == nil {
			rf.Reply = u.Reply
		}
	}
	pl := Decide(e.Policy, rf)
	if e.Metrics != nil && !e.countedAlready(rf, pl, e.now()) {
		e.Metrics.Verdict(rf.Reply.Code, pl.Verdict.Action.String())
	}
	// A message being delivered when its client was banned (for another
	// message) is held at its own refusal, whatever that is.
	out := Outcome{Plan: pl, Heard: pl.Undone, Hold: e.pendingHold(rf.ID)}
	if pl.Repeat {
		if pl.Verdict.Action.KeepsMail() && rf.Reply.Code >= 500 {
			// The relay's pace or set-up still: the mail stays queued.
			out.Settle, out.SettleReply = spool.Deferred, out.Heard.String()
		}
		return out
	}
	v := pl.Verdict
	if v.Action.Sanction() && pl.Action == Encapsulate {
		reason := "welcomelisted"
		if rf.Local {
			reason = "local"
		}
		e.MailLog.Spare(rf.ID, ipString(rf.Client), v.Rule, reason)
	}
	switch pl.Action {
	case Ban:
		out.Banned = e.ban(rf, pl)
	case BlockDomain:
		if !e.block(rf, pl) {
			e.report(rf, v, "domain not blocked")
		}
	case Encapsulate:
		notDone := e.encapsulate(rf, v)
		if out.Encapsulated = notDone == ""; !out.Encapsulated {
			e.report(rf, v, "not encapsulated: "+notDone)
		}
	case Report:
		switch {
		case v.Action == BlockDomain:
			e.log().Warn("sender domain not blocked", "why", pl.Why, "rule", v.Rule)
			e.report(rf, v, "domain not blocked: "+pl.Why)
		case pl.Why != "":
			e.report(rf, v, pl.Why)
		default:
			e.report(rf, v, "no rule knows this reply")
		}
	case Alert:
		e.alert(rf, v)
	}
	if out.Encapsulated {
		out.Heard = pl.Heard
	}
	out.Hold = out.Hold || out.Banned
	switch {
	case out.Encapsulated:
		// The recipient has the message, as an attachment.
		out.Settle, out.SettleReply = spool.Sent, "encapsulated after: "+rf.Reply.String()
	case pl.Action.KeepsMail() && rf.Reply.Code >= 500:
		// The relay's pace or set-up: the same mail goes through later.
		out.Settle, out.SettleReply = spool.Deferred, out.Heard.String()
	case out.Heard.Code >= 500 && rf.Reply.Code < 500:
		// A temporary spam refusal made permanent, so that the sender
		// stops retrying (the bounce carries the rewritten reply).
		out.Settle, out.SettleReply = spool.Bounced, out.Heard.String()
	}
	return out
}

func (e *Enforcer) ban(rf Refusal, pl Plan) bool {
	if e.Bans == nil || !pl.Client.IsValid() {
		return false
	}
	v := pl.Verdict
	if e.bannedAlready(rf.ID, pl.Client, v.Rule, e.now()) {
		// Another recipient of the same refusal: banned and held already.
		return true
	}
	reason := v.Rule + ": " + firstLine(rf.Reply.String())
	// The client's queued messages are remembered before the ban is
	// saved (markPending), held after.
	ms := e.markPending(BanNet(pl.Client, e.Bans.Width, e.Bans.Spare), rf.ID)
	b, err := e.Bans.Add(pl.Client, e.BanTime, reason)
	if err != nil {
		e.log().Error("ban not saved; in force in this process", "client", pl.Client, "err", err)
	}
	// The lines fail2ban reads are written when the ban takes effect, not
	// now: a jail acting on them at once would cut off the reply the
	// client is still to hear (relay-enforcer waits too).
	if e.BanLines != nil {
		e.BanLines.Add(b.From, BanEvent{Client: pl.Client, Net: b.Network(), Reason: reason, Until: b.Until, Rule: v.Rule,
			ID: rf.ID, Reply: rf.Reply.String()})
	}
	e.holdMarked(ms)
	what := "banned " + pl.Client.String()
	if !b.Network().IsSingleIP() {
		what += " and its network " + b.Target()
	}
	e.notifyAdmin(rf, v, what+" until "+b.Until.UTC().Format(time.RFC3339))
	return true
}

// ClientIP is the address of an envelope's client ("ip:port", or a bare
// address), IPv4-mapped addresses unmapped; invalid for "local".
func ClientIP(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

func (e *Enforcer) block(rf Refusal, pl Plan) bool {
	domain, v := pl.Domain, pl.Verdict
	if domain == "" || e.SenderAccess == "" {
		return false
	}
	added, err := BlockSenderDomainText(e.SenderAccess, domain, v.Rule+": "+firstLine(rf.Reply.String()), e.now())
	if err != nil {
		e.log().Error("blocking the sender domain failed", "domain", domain, "file", e.SenderAccess, "err", err)
		if !added {
			return false
		}
	}
	e.MailLog.Block(domain, rf.ID, ipString(rf.Client), v.Rule, added, rf.Reply.String())
	if added {
		if e.Tables != nil {
			e.Tables.Request()
		}
		e.notifyAdmin(rf, v, "blocked sender domain "+domain+" in "+e.SenderAccess)
	}
	return true
}

// alert tells the administrator about a fault of the relay's own set-up
// or account, once per cause per hour (AlertLimiter). The mail stays
// queued (Outcome.Settle).
//
// The cause is the rule, for the trusted upstreams together (Gmail's many
// hosts), and the rule again for the upstreams not trusted together: any
// mail server a client mails can answer in Gmail's words, and its alert
// must not use up the hour's alert for a real one; nor may a client that
// mails many such servers send the administrator an alert for each.
func (e *Enforcer) alert(rf Refusal, v Verdict) {
	if !e.alerts.Due(e.cause(rf, v.Rule), e.now()) {
		return
	}
	e.MailLog.AdminAlert(rf.ID, ipString(rf.Client), v.Rule, rf.Reply.String())
	e.log().Warn("the upstream blames the relay's own set-up or account; the mail stays queued",
		"rule", v.Rule, "reply", rf.Reply.String())
	what := "the relay's own set-up or account is at fault; the mail stays queued"
	if !rf.trusted(e.Policy.TrustedUpstreams) {
		what = "an upstream that is not trusted says " + what
	}
	e.notifyAdmin(rf, v, what)
}

// cause is what the administrator hears of once an hour: kind, for the
// trusted upstreams together, and kind again for all the others together.
// Any mail server a client mails can answer as it likes: its alerts and
// reports must not use up the hour's mail about Gmail's own refusals.
func (e *Enforcer) cause(rf Refusal, kind string) string { return AlertCause(e.Policy, rf, kind) }

func (e *Enforcer) kick() {
	if e.Queue != nil {
		e.Queue.Kick(false)
	}
}

// encapsulate queues one encapsulated copy per refused recipient. It says
// why none could be made (no content, already encapsulated, a spool
// error), and then nothing was queued for any recipient; "" when done.
func (e *Enforcer) encapsulate(rf Refusal, v Verdict) (notDone string) {
	switch {
	case e.Spool == nil || e.RelayAddress == "":
		return "the relay queues no copies here"
	case rf.ContentPath == "":
		return "the message's content is not at hand"
	case encapsulatedFile(rf.ContentPath):
		e.log().Info("refusal of an encapsulated copy: not encapsulated again", "id", rf.ID)
		return "the message is an encapsulated copy already: never encapsulated twice"
	case !e.encaps.allow(e.EncapsulateRateLimit, rf.Client, len(rf.To), e.now()):
		e.log().Warn("encapsulation limit reached: the refusal goes to the sender", "id", rf.ID, "client", ipString(rf.Client))
		return encapLimitText(e.EncapsulateRateLimit)
	}
	// All copies or none: the client hears the refusal unless every one
	// was queued, and a copy queued for one recipient then would be a
	// second one, or one of a message its sender is told failed: those
	// queued are withdrawn if a later one cannot be.
	var ids []string
	for _, to := range rf.To {
		id, err := e.queueEncapsulated(rf, to)
		if err != nil {
			e.log().Error("encapsulated copy not queued", "id", rf.ID, "to", to, "err", err)
			e.withdraw(ids)
			return "the copy could not be queued: " + err.Error()
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		e.MailLog.Encapsulate(id, rf.ID, rf.To[i], ipString(rf.Client), v.Rule, rf.Reply.String())
	}
	e.kick()
	e.notifyAdmin(rf, v, "forwarded encapsulated as "+strings.Join(ids, ", "))
	return ""
}

// withdraw removes the copies queued before one could not be (a full
// disk), as far as it can: one a worker has claimed meanwhile goes out.
func (e *Enforcer) withdraw(ids []string) {
	for _, id := range ids {
		c, err := e.Spool.Claim(id)
		if err == nil {
			err = c.Delete()
		}
		if err != nil {
			e.log().Warn("encapsulated copy not withdrawn; it goes out", "id", id, "err", err)
		}
	}
}

func (e *Enforcer) queueEncapsulated(rf Refusal, to string) (string, error) {
	orig, err := os.Open(rf.ContentPath)
	if err != nil {
		return "", err
	}
	defer orig.Close()
	now := e.now()
	w, err := e.Spool.Create(now)
	if err != nil {
		return "", err
	}
	opts := EncapsulateOptions{From: e.RelayAddress, To: to, OriginalSender: rf.From, Reason: rf.Reply.String(),
		Client: rf.Client, Now: now}
	var msg bytes.Buffer
	err = EncapsulateMessage(&msg, orig, opts)
	if err == nil && e.Signer != nil {
		// Signed as the relay's domain, so that the copy passes the
		// upstream's DKIM and DMARC checks itself.
		var sig string
		if sig, err = e.Signer.Signature(bytes.NewReader(msg.Bytes())); err == nil {
			_, err = io.WriteString(w, sig)
		}
	}
	if err == nil {
		_, err = w.Write(msg.Bytes())
	}
	if err != nil {
		w.Abort()
		return "", err
	}
	// The copy keeps its original's client: it carries that client's
	// content, so a refusal of the copy for spam bans the client that
	// submitted it (a copy "submitted locally" would ban nobody, and a
	// spammer forging a DMARC-protected From: would never be banned).
	client := "local"
	if rf.Client.IsValid() && !rf.Local {
		client = rf.Client.String()
	}
	env := &spool.Envelope{From: e.RelayAddress, Recipients: []spool.Recipient{{Addr: to, Status: spool.Pending}},
		BodyType: "8bit", Client: client, ClientName: rf.ClientName, Arrival: now}
	if err := w.Finish(env); err != nil {
		return "", err
	}
	return w.ID(), nil
}

// encapsulatedFile reports whether the message at path carries the marker
// of an encapsulated copy.
func encapsulatedFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	h, err := textproto.NewReader(bufio.NewReader(io.LimitReader(f, 1<<20))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return false
	}
	return IsEncapsulated(textproto.MIMEHeader(h))
}

func (e *Enforcer) report(rf Refusal, v Verdict, why string) {
	e.MailLog.Report(rf.ID, ipString(rf.Client), rf.From, rf.To, v.Rule, why, rf.Reply.String())
	if rf.own() {
		// A refused report, notice or double bounce: a report about it,
		// refused in turn, would make the next one.
		return
	}
	if !e.reports.Due(e.cause(rf, v.Rule+"\x00"+v.Action.String()), e.now()) {
		return
	}
	e.notifyAdmin(rf, v, why)
}

// notifyAdmin queues a short plain-text report to the administrator.
func (e *Enforcer) notifyAdmin(rf Refusal, v Verdict, what string) {
	if e.Admin == "" || e.Spool == nil || e.RelayAddress == "" {
		return
	}
	now := e.now()
	w, err := e.Spool.Create(now)
	if err != nil {
		e.log().Error("report to the administrator not queued", "err", err)
		return
	}
	fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: relaykeeper: %s (%s)\r\nDate: %s\r\nAuto-Submitted: auto-generated\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Action:   %s\r\nRule:     %s\r\nMessage:  %s\r\nClient:   %s\r\nSender:   %s\r\nRecipients: %s\r\nUpstream: %s\r\n\r\nThe upstream said:\r\n  %s\r\n",
		e.RelayAddress, e.Admin, v.Action, what, now.Format(time.RFC1123Z),
		what, v.Rule, rf.ID, rf.Client, rf.From, strings.Join(rf.To, ", "), e.upstreamLine(rf), oneLineText(rf.Reply.String()))
	env := &spool.Envelope{From: "", Recipients: []spool.Recipient{{Addr: e.Admin, Status: spool.Pending}},
		BodyType: "8bit", Client: "local", Arrival: now, Bounce: true}
	if err := w.Finish(env); err != nil {
		return
	}
	e.kick()
}

// upstreamLine names the upstream that refused, for the administrator's
// mail: any mail server a client mails can answer in Gmail's words, so the
// administrator must tell Gmail's own refusals from the others.
func (e *Enforcer) upstreamLine(rf Refusal) string {
	host := oneLineText(rf.upstreamHost())
	switch {
	case host == "":
		return "unknown"
	case !Trusted(host, e.Policy.TrustedUpstreams):
		return host + " (not a trusted upstream: its words are its own)"
	case AdminRule(rf.Reply):
		return host + " (trusted, but the reply is a rule of the recipient domain's administrator, \"gcdp\": its words are the administrator's)"
	}
	return host + " (trusted)"
}

func firstLine(s string) string {
	s = oneLineText(s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func oneLineText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ipString is an address for the mail log; "-" for a message the relay
// made itself, which has no client address.
func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return "-"
	}
	return ip.String()
}

// ActOnProxied is Act for a refusal the proxy met, and ActOnSession for
// one before its transaction (greeting, STARTTLS, login).
func (e *Enforcer) ActOnProxied(ctx context.Context, rf Refusal) Outcome {
	if BeforeTransaction(rf.Upstream.Stage) {
		return e.ActOnSession(ctx, rf)
	}
	return e.Act(ctx, rf)
}

// ActOnSession is Act for an upstream's refusal of the relay's own session,
// before any transaction (its greeting, STARTTLS, the relay's login), as
// proxy mode meets it at each client's MAIL: only an alert is acted on, as
// the scheduler passes on only alerts from there. Anything else would be
// about the relay's address, once per client connection.
//
// An alert is also logged as the scheduler logs one (an alert line, for
// the metrics and the dashboard), at most once a minute per upstream and
// rule: the scheduler logs one per delivery attempt, the proxy meets the
// refusal once per client connection.
func (e *Enforcer) ActOnSession(ctx context.Context, rf Refusal) Outcome {
	v := e.Policy.Rules.Classify(rf.Upstream)
	if v.Action != Alert {
		return Outcome{Heard: rf.Reply}
	}
	if e.sessionAlerts.DueEvery(rf.Host+" "+v.Rule, e.now(), time.Minute) {
		e.MailLog.DestinationAlert(rf.Host, rf.Host, rf.Reply.String())
	}
	return e.Act(ctx, rf)
}
