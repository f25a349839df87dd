package enforce

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Enforcer acts on the upstream's refusals of relayed messages, for the
// relay itself (store-and-forward and proxy); the Postfix companion uses the
// same parts on Postfix's log. Its zero value does nothing; set the fields
// before first use.
type Enforcer struct {
	Rules  *Rules
	Filter *ReplyFilter
	Bans   *Bans
	// Welcome, if set, names clients that are never banned: their
	// messages are forwarded encapsulated instead.
	Welcome *Welcomelist
	// SenderAccess is the Postfix sender_access file the enforcer keeps.
	SenderAccess string
	// NeverBlock are domains never blocked, whatever a reply says: huge
	// freemail domains and the relay's own, where a forged sender would
	// otherwise cut off everyone. Such a refusal is reported instead.
	NeverBlock []string
	BanTime    time.Duration
	// Spool receives encapsulated copies and reports; OnQueued is called
	// after one is queued (to kick the scheduler).
	Spool    *spool.Spool
	OnQueued func()
	// OnBlocked is called after a domain was added to SenderAccess (to
	// reload the table at once).
	OnBlocked func()
	// RelayAddress sends encapsulated copies and reports
	// ("postmaster@relay.example").
	RelayAddress string
	// Admin, if set, gets a report of every action and every refusal no
	// rule knows (relay-enforcer's -m).
	Admin string
	// BanLog, if set, gets a fail2ban line per ban (relay-enforcer's
	// "bannable REASON IP").
	BanLog  io.Writer
	MailLog *maillog.Logger
	Log     *slog.Logger
	Now     func() time.Time
}

// Refusal is one refusal of a relayed message, for some of its recipients.
type Refusal struct {
	// ID is the message's queue id.
	ID         string
	Client     netip.Addr
	ClientName string
	// From is the envelope sender; To the refused recipients.
	From string
	To   []string
	// Reply is the upstream's refusal.
	Reply Reply
	// ContentPath is the message, for encapsulation; "" if unavailable.
	ContentPath string
}

// Outcome says what the enforcer did and what the original client is to
// hear about the refused recipients.
type Outcome struct {
	Verdict Verdict
	// Encapsulated: copies went to every recipient in To; they count as
	// delivered.
	Encapsulated bool
	// Banned: the client is banned; its queued mail is being held.
	Banned bool
	// Heard is the reply for the original client after reply rewriting,
	// on one line (Postfix-joined); equal to the upstream's if no rule
	// rewrote it.
	Heard string
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

// Key identifies a refusal for deduplication: the same action on the same
// recipient for the same reply text (without its session id, which Gmail
// changes on every attempt).
func Key(v Verdict, rcpt string, r Reply) string {
	norm := Normalize(r.Text)
	// Gmail ends each reply with "<session id> - gsmtp"; drop the id.
	if i := strings.LastIndex(norm, " - gsmtp"); i > 0 {
		if j := strings.LastIndexByte(norm[:i], ' '); j > 0 {
			norm = norm[:j] + norm[i:]
		}
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d %s", r.Code, norm)))
	return v.Action.String() + " " + rcpt + " " + hex.EncodeToString(sum[:6])
}

// Act classifies a refusal and acts on it.
func (e *Enforcer) Act(ctx context.Context, rf Refusal) Outcome {
	v := Verdict{}
	if e.Rules != nil {
		v = e.Rules.Classify(rf.Reply)
	}
	out := Outcome{Verdict: v, Heard: rf.Reply.Text}
	act := v.Action
	if (act == Ban || act == BlockDomain) && e.Welcome != nil && e.Welcome.Welcome(rf.Client, rf.ClientName) {
		// A welcomelisted client is never banned and its domain never
		// blocked; its mail may well be good, so it goes on
		// encapsulated (relay-enforcer's rule).
		e.MailLog.Spare(rf.ID, ipString(rf.Client), v.Rule, "welcomelisted")
		act = Encapsulate
	}
	switch act {
	case Ban:
		out.Banned = e.ban(rf, v)
	case BlockDomain:
		if !e.block(rf, v) {
			e.report(rf, v, "domain not blocked")
		}
	case Encapsulate:
		out.Encapsulated = e.encapsulate(rf, v)
		if !out.Encapsulated {
			e.report(rf, v, "not encapsulated")
		}
	case Report:
		e.report(rf, v, "no rule knows this reply")
	}
	if e.Filter != nil {
		if heard, ok := e.Filter.RewriteFor(rf.Reply.Text, out.Encapsulated); ok {
			out.Heard = heard
		}
	}
	return out
}

func (e *Enforcer) ban(rf Refusal, v Verdict) bool {
	if e.Bans == nil || !rf.Client.IsValid() {
		return false
	}
	reason := v.Rule + ": " + firstLine(rf.Reply.Text)
	b, err := e.Bans.Add(rf.Client, e.BanTime, reason)
	if err != nil {
		e.log().Error("ban not saved; in force in this process", "client", rf.Client, "err", err)
	}
	// The lines fail2ban reads are written when the ban takes effect, not
	// now: a jail acting on them at once would cut off the reply the
	// client is still to hear (relay-enforcer waits too).
	logBan := func() {
		e.MailLog.Ban(ipString(rf.Client), rf.ID, b.Until, v.Rule, rf.Reply.Text)
		if e.BanLog != nil {
			fmt.Fprintf(e.BanLog, "%s relay-enforcer: %s\n", e.now().UTC().Format(time.RFC3339), BanLine(reason, rf.Client))
		}
	}
	if wait := b.From.Sub(e.now()); wait > 0 {
		time.AfterFunc(wait, logBan)
	} else {
		logBan()
	}
	e.holdFrom(rf.Client)
	e.notifyAdmin(rf, v, "banned "+rf.Client.String()+" until "+b.Until.UTC().Format(time.RFC3339))
	return true
}

// holdFrom holds every ready message the banned client submitted: each
// would cost the relay more reputation. An administrator releases or
// deletes them (`relaykeeper queue release|delete`).
func (e *Enforcer) holdFrom(ip netip.Addr) {
	if e.Spool == nil {
		return
	}
	ents, err := e.Spool.List()
	if err != nil {
		return
	}
	for _, ent := range ents {
		if ent.State != spool.Ready {
			continue
		}
		env, _, err := e.Spool.Read(ent.ID)
		if err != nil || clientIP(env.Client) != ip {
			continue
		}
		c, err := e.Spool.Lock(ent.ID)
		if err != nil {
			continue // being delivered now: its own refusal will hold it
		}
		if err := c.Move(spool.Held); err == nil {
			e.MailLog.Hold(ent.ID, ip.String(), env.From, "client banned")
		} else {
			c.Unlock()
		}
	}
}

func clientIP(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

func (e *Enforcer) block(rf Refusal, v Verdict) bool {
	_, domain, ok := strings.Cut(rf.From, "@")
	if !ok || domain == "" || e.SenderAccess == "" {
		return false
	}
	domain = strings.ToLower(domain)
	for _, d := range e.NeverBlock {
		if domain == strings.ToLower(d) || strings.HasSuffix(domain, "."+strings.ToLower(d)) {
			e.log().Warn("refusal names a domain that is never blocked", "domain", domain, "rule", v.Rule)
			return false
		}
	}
	added, err := BlockSenderDomain(e.SenderAccess, domain, v.Rule+": "+firstLine(rf.Reply.Text), e.now())
	if err != nil {
		e.log().Error("blocking the sender domain failed", "domain", domain, "file", e.SenderAccess, "err", err)
		if !added {
			return false
		}
	}
	e.MailLog.Block(domain, rf.ID, ipString(rf.Client), v.Rule, added, rf.Reply.Text)
	if added {
		if e.OnBlocked != nil {
			e.OnBlocked()
		}
		e.notifyAdmin(rf, v, "blocked sender domain "+domain+" in "+e.SenderAccess)
	}
	return true
}

// encapsulate queues one encapsulated copy per refused recipient. It says
// false if none could be made (no content, already encapsulated, a spool
// error), and then nothing was queued for any recipient.
func (e *Enforcer) encapsulate(rf Refusal, v Verdict) bool {
	if e.Spool == nil || rf.ContentPath == "" || e.RelayAddress == "" {
		return false
	}
	if encapsulatedFile(rf.ContentPath) {
		e.log().Info("refusal of an encapsulated copy: not encapsulated again", "id", rf.ID)
		return false
	}
	var ids []string
	for _, to := range rf.To {
		id, err := e.queueEncapsulated(rf, to)
		if err != nil {
			e.log().Error("encapsulated copy not queued", "id", rf.ID, "to", to, "err", err)
			return false
		}
		ids = append(ids, id)
		e.MailLog.Encapsulate(id, rf.ID, to, ipString(rf.Client), v.Rule, rf.Reply.Text)
	}
	if e.OnQueued != nil {
		e.OnQueued()
	}
	e.notifyAdmin(rf, v, "forwarded encapsulated as "+strings.Join(ids, ", "))
	return true
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
	opts := EncapsulateOptions{From: e.RelayAddress, To: to, OriginalSender: rf.From, Reason: rf.Reply.Text,
		Client: rf.Client, Now: now}
	if err := EncapsulateMessage(w, orig, opts); err != nil {
		w.Abort()
		return "", err
	}
	env := &spool.Envelope{From: e.RelayAddress, Recipients: []spool.Recipient{{Addr: to, Status: spool.Pending}},
		BodyType: "8bit", Client: "local", Arrival: now}
	if err := w.Prepare(env); err != nil {
		w.Abort()
		return "", err
	}
	if err := w.Commit(false); err != nil {
		w.Abort()
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
	e.MailLog.Report(rf.ID, ipString(rf.Client), rf.From, rf.To, v.Rule, why, rf.Reply.Text)
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
		"Action:   %s\r\nRule:     %s\r\nMessage:  %s\r\nClient:   %s\r\nSender:   %s\r\nRecipients: %s\r\n\r\nThe upstream said:\r\n  %s\r\n",
		e.RelayAddress, e.Admin, v.Action, what, now.Format(time.RFC1123Z),
		what, v.Rule, rf.ID, rf.Client, rf.From, strings.Join(rf.To, ", "), oneLineText(rf.Reply.Text))
	env := &spool.Envelope{From: "", Recipients: []spool.Recipient{{Addr: e.Admin, Status: spool.Pending}},
		BodyType: "8bit", Client: "local", Arrival: now, Bounce: true}
	if err := w.Prepare(env); err != nil {
		w.Abort()
		return
	}
	if err := w.Commit(false); err != nil {
		w.Abort()
		return
	}
	if e.OnQueued != nil {
		e.OnQueued()
	}
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
