package enforce

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Welcomer says whether a client is exempt from bans and domain blocks
// (*Welcomelist). hostname is the client's verified name, "" if none.
type Welcomer interface {
	Welcome(ip netip.Addr, hostname string) bool
}

// SRSDecoder reads an SRS address (postsrsd's format) back into the
// address it stands for. ok is true only when the address's hash verifies
// with the relay's own secret: an SRS address anyone can write
// ("SRS0=abcd=XY=gmail.com=bob@attacker.example") is never read as another
// domain's.
type SRSDecoder interface {
	Decode(addr string) (orig string, ok bool)
}

// Policy is what Decide needs besides the refusal. Its zero value has no
// rules (every refusal is reported), exempts nobody and decodes no SRS.
type Policy struct {
	Rules *Rules
	// Filter rewrites what the client hears (smtp_reply_filter); nil
	// rewrites nothing.
	Filter *ReplyFilter
	// Welcome exempts clients: their refusals are encapsulated instead of
	// banned or blocked. nil: nobody is exempt.
	Welcome Welcomer
	// NeverBlock are domains (and their subdomains) never blocked: the
	// relay's own. Such a refusal is reported instead.
	NeverBlock []string
	// NeverBlockNow, if set, gives more domains never blocked, asked at
	// each decision: those of tables that change while the relay runs
	// (the domains the canonical maps map into).
	NeverBlockNow func() []string
	// SRS, if set, reads a verified SRS sender back to its domain.
	SRS SRSDecoder
	// TrustedUpstreams are the upstream hosts (names or addresses, no
	// port) whose refusals are acted on besides Google's mail servers
	// (see Trusted): the smarthost, the administrator's next hops. A
	// sanction (ban, block-domain) on any other upstream's word becomes a
	// report: whoever runs a mail server can answer in Gmail's words.
	TrustedUpstreams []string
}

// googleMail are the domains of Google's mail servers: an upstream named
// under one is trusted without being listed.
var googleMail = []string{"google.com", "googlemail.com", "gmail.com"}

// Trusted reports whether an upstream refusal's host is one whose word
// sanctions a client or a domain: a host of trusted (exact, case-
// insensitive, without a port) or a name under Google's mail domains.
// host is as the relay or Postfix logs it: "name", "name:port", "[ip]:port"
// or "name[ip]:port", where name and ip both count for trusted and the
// name alone for Google.
func Trusted(host string, trusted []string) bool {
	name, ip := splitUpstream(host)
	for _, t := range trusted {
		tn, tip := splitUpstream(t)
		for _, a := range []string{tn, tip} {
			if a != "" && (strings.EqualFold(a, name) || strings.EqualFold(a, ip)) {
				return true
			}
		}
	}
	return neverBlocked(strings.ToLower(name), googleMail)
}

// splitUpstream reads an upstream as logged ("name[ip]:port", "host:port",
// "[ip]", "host") into its name and address, without a port or a final
// dot; either may be "".
func splitUpstream(s string) (name, ip string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '['); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			name, ip = s[:i], s[i+1:i+j]
			if h, _, err := net.SplitHostPort(ip); err == nil {
				ip = h
			}
			return strings.TrimSuffix(name, "."), ip
		}
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", s
	}
	return strings.TrimSuffix(s, "."), ""
}

// Refusal is one upstream refusal of a relayed message, for some of its
// recipients, as both the relay and the Postfix companion see it.
type Refusal struct {
	// ID is the message's queue id.
	ID string
	// Client is the address of the client that submitted the message;
	// invalid when unknown or when Local.
	Client     netip.Addr
	ClientName string
	// Local: the message was submitted on this machine, without a network
	// client (sendmail, the pickup directory).
	Local bool
	// Own: the relay made the message itself (a delivery status notice, a
	// double bounce, a report: spool.Envelope.Bounce). Its refusal is
	// reported, never acted on: an encapsulated copy of a notice, refused
	// in turn, makes another notice, and the relay's own mail feeds itself.
	// A null sender submitted locally counts as Own too: Postfix's own
	// notices, as postfix-enforcer sees them. (An encapsulated copy is
	// known by its marker, and never encapsulated again.)
	Own bool
	// From is the envelope sender; To the refused recipients.
	From string
	To   []string
	// Upstream is the upstream's refusal: rf.Reply, rf.Host, rf.Stage.
	Upstream
	// UpstreamIP is the upstream's address when Host is its name only (the
	// companion's relay=name[ip]): either makes it trusted.
	UpstreamIP string
	// ContentPath is the message, for encapsulation; "" if unavailable.
	ContentPath string
	// Done are the Keys of the refusals of this message acted on already
	// (across retries and restarts): the same refusal is never acted on
	// twice.
	Done []string
}

// upstreamHost is the refusing upstream as Trusted reads it: Host, with
// UpstreamIP when Host has no address.
func (rf Refusal) upstreamHost() string {
	if rf.UpstreamIP != "" && !strings.Contains(rf.Host, "[") {
		return rf.Host + "[" + rf.UpstreamIP + "]"
	}
	return rf.Host
}

// trusted reports whether rf's words may sanction (see Trusted): they
// come from a trusted upstream, and are not a Google Workspace
// administrator's own rule (AdminRule).
func (rf Refusal) trusted(trusted []string) bool {
	return Trusted(rf.upstreamHost(), trusted) && !AdminRule(rf.Reply)
}

// AdminRule reports whether r is a refusal that a Google Workspace
// administrator's own rule made (content compliance, routing): Google
// marks those "... - gcdp <session> - gsmtp" (Google Custom Domain
// Policies; any "- gcdp" word counts: Gmail's own replies have none), and
// their text is whatever the administrator typed. It comes from Google's
// MX all the same, so anyone with a Workspace domain could answer a
// relay's client in Gmail's words ("likely unsolicited mail", "very low
// reputation of the sending domain"): the recipient domain's words, never
// Gmail's verdict on the client or the sender's domain.
func AdminRule(r reply.Reply) bool {
	return gcdpMark.MatchString(withoutEchoes(Normalize(r.String())))
}

var gcdpMark = regexp.MustCompile(`(?i)(^|\s)-\s*gcdp(\s|$)`)

// AlertCause is what the administrator hears of once an hour, for a
// refusal whose rule (or verdict) is kind: kind, for the trusted
// upstreams' own words together (Gmail's many hosts), and kind again for
// all the others together (untrusted upstreams, a Workspace
// administrator's rule). Any mail server a client mails can answer in
// Gmail's words: its alerts must not use up the hour's alert about
// Gmail's own refusals. The relay and postfix-enforcer count alike.
func AlertCause(p Policy, rf Refusal, kind string) string {
	if !rf.trusted(p.TrustedUpstreams) {
		return kind + "\x00untrusted"
	}
	return kind
}

// own reports a refusal of the relay's own message (Own), or of a local
// null sender (Postfix's own notice).
func (rf Refusal) own() bool { return rf.Own || rf.Local && rf.From == "" }

// Plan is what Decide says to do about a refusal. It is a value: the relay
// and the companion carry it out in their own ways, and the scheduler
// reads Action to keep (Pace, Alert) or settle the mail.
type Plan struct {
	// Verdict is the rules' verdict on the reply.
	Verdict Verdict
	// Action is what is to be done: the verdict's action, changed by the
	// welcomelist, local submission and the guards (Why says how).
	Action Action
	// Client is the client to ban (Action Ban).
	Client netip.Addr
	// Domain is the domain to block (Action BlockDomain).
	Domain string
	// Why says why Action differs from Verdict.Action; "" if it does not.
	Why string
	// Heard is what the submitting client hears once the action is done
	// (the reply the SMTP edge writes back); Undone what it hears if the action
	// could not be done (an encapsulated copy that could not be made).
	// Both equal the upstream's reply when nothing rewrote it.
	Heard, Undone reply.Reply
	// Key identifies the refusal for deduplication (see Key).
	Key string
	// Repeat: the same refusal was acted on already (its Key is in
	// Refusal.Done); Action is None.
	Repeat bool
}

// Decide is the one enforcement decision, a pure function of the policy
// and the refusal: it classifies the reply with the rules, then
//
//   - a refusal acted on already (same Key) gets nothing;
//   - ban and block-domain become encapsulate for a welcomelisted client
//     and for local submission: their mail is probably good;
//   - ban and block-domain become report when the client is unknown:
//     whether it is on the welcomelist cannot be told;
//   - block-domain names the domain in the reply (Gmail's "[example.com
//     30]") or else the envelope sender's, read through a verified SRS
//     address only; report when there is none, it is never blocked, it
//     is a public suffix ("co.uk"), or a never-blocked domain is under it;
//   - encapsulate becomes report for a recipient problem (X.1.1-X.1.6,
//     X.2.*): forwarding cannot fix it;
//   - ban and block-domain become report when the refusal did not come
//     from a trusted upstream (see Trusted);
//   - pace and alert keep the mail: the client hears a temporary reply,
//     also when the refusal was acted on already.
func Decide(p Policy, rf Refusal) Plan {
	if rf.Reply.Code == 0 {
		// Only the text: read the code and enhanced code from it.
		if u, err := ParseReply(rf.Reply.String()); err == nil {
			rf.Reply = u.Reply
		}
	}
	v := p.Rules.Classify(rf.Upstream)
	pl := Plan{Verdict: v, Action: v.Action, Heard: rf.Reply, Undone: rf.Reply}
	pl.Key = Key(v, strings.Join(rf.To, ","), rf.Reply)
	if slices.Contains(rf.Done, pl.Key) {
		pl.Action, pl.Repeat, pl.Why = None, true, "acted on already"
		if v.Action.KeepsMail() {
			// Acted on once, but the mail is still kept every time.
			pl.Heard = temporary(rf.Reply)
			pl.Undone = pl.Heard
		}
		return pl
	}
	welcomed := rf.Client.IsValid() && p.Welcome != nil && p.Welcome.Welcome(rf.Client, rf.ClientName)
	change := func(a Action, why string) { pl.Action, pl.Why = a, why }
	host := rf.upstreamHost()
	trusted := rf.trusted(p.TrustedUpstreams)
	untrusted := "upstream " + host + " is not a trusted upstream; not acted on"
	switch {
	case rf.Host == "":
		untrusted = "the upstream is unknown; not acted on"
	case AdminRule(rf.Reply):
		untrusted = "the reply is a rule of the recipient domain's administrator (Google's \"gcdp\"), not Gmail's verdict; not acted on"
	}
	sanction := v.Action == Ban || v.Action == BlockDomain || v.Action == Encapsulate
	switch own := rf.own(); {
	case own && sanction:
		change(Report, "the relay's own message (a notice): never acted on")
	case sanction && BeforeTransaction(rf.Stage):
		// Refused at the greeting, EHLO, STARTTLS or login: no message
		// was read, and Postfix logs the refusal for every message it
		// was about to send. The words are about the relay's address.
		change(None, "refused before the transaction ("+rf.Stage+"): no message of the client's was read")
	case v.Action == Ban && BeforeContent(rf.Stage):
		// Gmail's "unusual rate of unsolicited mail originating from
		// your IP address" at MAIL, RCPT or the DATA command: said
		// before any content, to whichever message came next; the
		// words are about the relay's address. The mail is kept as the
		// code says, not made 5xx.
		change(None, "refused at "+strings.ToUpper(strings.TrimSuffix(rf.Stage, " command"))+
			", before the content: the client's message was not read")
		return pl
	case v.Action == Ban:
		switch {
		case rf.Local:
			change(Encapsulate, "submitted locally")
		case welcomed:
			change(Encapsulate, "the client is on the welcomelist")
		case !rf.Client.IsValid():
			change(Report, "the client is unknown")
		case !trusted:
			change(Report, untrusted)
		default:
			pl.Client = banIP(rf.Client)
		}
	case v.Action == BlockDomain:
		pl.Domain = v.Domain
		if pl.Domain == "" {
			pl.Domain = SenderDomain(rf.From, p.SRS)
		}
		never := p.NeverBlock
		if p.NeverBlockNow != nil {
			never = append(slices.Clip(never), p.NeverBlockNow()...)
		}
		switch {
		case rf.Local:
			change(Encapsulate, "submitted locally")
		case welcomed:
			change(Encapsulate, "the client is on the welcomelist")
		case !rf.Client.IsValid():
			// Whether the client is on the welcomelist cannot be told.
			change(Report, "the client is unknown")
		case pl.Domain == "":
			change(Report, "no sender domain to block")
		case isPublicSuffix(pl.Domain):
			change(Report, "the domain "+pl.Domain+" is a public suffix: blocking it blocks every domain under it")
		case neverBlocked(pl.Domain, never):
			change(Report, "the domain "+pl.Domain+" is never blocked")
		case underDomain(pl.Domain, never) != "":
			// An access table's entry for a domain covers its
			// subdomains (Postfix's parent_domain_matches_subdomains).
			change(Report, "blocking "+pl.Domain+" blocks "+underDomain(pl.Domain, never)+", which is never blocked")
		case !trusted:
			change(Report, untrusted)
		case v.Domain != "" && !coveredBy(SenderDomain(rf.From, p.SRS), v.Domain):
			// Gmail names a domain ("your DKIM domain [d 30]") that is
			// not the envelope sender's: a DKIM-signed message of
			// another's, replayed by this client. Blocking d at MAIL
			// FROM would refuse d's own senders, and not this client,
			// which does not send as d.
			change(Report, "the upstream names "+v.Domain+", not the envelope sender's domain: blocking it would refuse "+
				v.Domain+"'s own mail, not this sender's")
		}
		if pl.Action != BlockDomain {
			pl.Domain = ""
		}
	}
	if pl.Action == Encapsulate && recipientProblem(rf.Reply.Enhanced) {
		change(Report, "a recipient problem is never encapsulated")
	}
	if pl.Action.KeepsMail() {
		// The mail stays queued: nobody is told it failed for good.
		pl.Heard = temporary(rf.Reply)
		pl.Undone = pl.Heard
		return pl
	}
	if p.Filter != nil {
		if s, ok := p.Filter.RewriteFor(rf.Reply.String(), false); ok {
			pl.Undone = rewritten(rf.Reply, s)
		}
		pl.Heard = pl.Undone
		if pl.Action == Encapsulate {
			if s, ok := p.Filter.RewriteFor(rf.Reply.String(), true); ok {
				pl.Heard = rewritten(rf.Reply, s)
			}
		}
	}
	if pl.Action == Encapsulate && pl.Heard.Code/100 != 2 {
		// Forwarded, the recipient has it: a client told otherwise (a
		// welcomelisted client's spam refusal, which no filter rule
		// makes a success) bounces a delivered message, or sends it
		// again.
		what := "the upstream refused it"
		if rf.Reply.Enhanced != "" {
			what += ": " + rf.Reply.Enhanced
		}
		pl.Heard = reply.New(250, "2.0.0 Ok: forwarded encapsulated to the recipient ("+what+")")
	}
	return pl
}

// BeforeTransaction reports whether stage, what a reply answered as the
// relay ("greeting", "ehlo", "tls handshake") or Postfix ("connect",
// "helo") names it, comes before MAIL FROM: such a refusal is about the
// session, not about the message of any client, and bans, blocks or
// encapsulates nothing.
func BeforeTransaction(stage string) bool {
	switch stage {
	case "connect", "greeting", "helo", "ehlo", "starttls", "tls handshake", "auth":
		return true
	}
	return false
}

// BeforeContent reports whether stage is one of the transaction's before
// any of the message's content went: MAIL FROM ("mail"), RCPT TO ("rcpt")
// or the DATA command itself ("data command"; "data" is the final dot).
// A ban's words there are about the relay's address, not the message.
func BeforeContent(stage string) bool {
	switch stage {
	case "mail", "rcpt", "data command":
		return true
	}
	return false
}

// rewritten is the reply a filter made of r: the filter rewrites the
// reply's text, as Postfix's smtp_reply_filter does, so its output is read
// as a reply.
func rewritten(r reply.Reply, text string) reply.Reply {
	u, err := ParseReply(text)
	if err != nil {
		return r
	}
	return u.Reply
}

// temporary is r as a temporary refusal: a 5xx reply becomes 451 with the
// enhanced code's class 4, its text on one line.
func temporary(r reply.Reply) reply.Reply {
	if r.Code < 500 || r.Code > 599 {
		return r
	}
	enh := r.Enhanced
	if enh != "" {
		enh = "4" + enh[1:]
	}
	var texts []string
	for _, l := range splitReply(joinLines(r.String())) {
		if l.text != "" {
			texts = append(texts, l.text)
		}
	}
	line := strings.Join(texts, " ")
	if enh != "" {
		line = strings.TrimSpace(enh + " " + line)
	}
	return reply.Reply{Code: 451, Enhanced: enh, Lines: []string{line}}
}

// isPublicSuffix reports whether domain is a public suffix ("co.uk",
// "github.io"): one under which anyone registers a domain of their own,
// so that an access table's entry for it would block all of them. A
// client chooses its sender's domain; Gmail's verdict on that sender must
// not cut off a whole registry.
func isPublicSuffix(domain string) bool {
	s, _ := publicsuffix.PublicSuffix(domain)
	return s == domain
}

// underDomain returns the first domain of list that is under domain (and
// so blocked with it), "" if none is.
func underDomain(domain string, list []string) string {
	for _, d := range list {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if strings.HasSuffix(d, "."+domain) {
			return d
		}
	}
	return ""
}

// coveredBy reports whether an access table's entry for blocked refuses
// a sender in domain: the same domain, or one under it.
func coveredBy(domain, blocked string) bool {
	blocked = strings.ToLower(strings.TrimSuffix(blocked, "."))
	return domain != "" && (domain == blocked || strings.HasSuffix(domain, "."+blocked))
}

// neverBlocked reports whether domain is one of list or under one.
func neverBlocked(domain string, list []string) bool {
	for _, d := range list {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if d != "" && (domain == d || strings.HasSuffix(domain, "."+d)) {
			return true
		}
	}
	return false
}

// SenderDomain is the lower-case domain of an envelope sender, "" for the
// null sender. An SRS address is read back to the domain it stands for
// only when srs verifies it with the relay's secret; otherwise it is the
// forwarder's address like any other, whose domain is the one after the
// last '@'.
func SenderDomain(from string, srs SRSDecoder) string {
	if srs != nil && len(from) > 5 && strings.EqualFold(from[:3], "SRS") {
		if orig, ok := srs.Decode(from); ok {
			from = orig
		}
	}
	at := strings.LastIndexByte(from, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(from[at+1:], "."))
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

// Key identifies a refusal for deduplication: the same action on the same
// recipient for the same reply text (without its session id, which Gmail
// changes on every attempt, and without the addresses in it: Gmail names
// the relay's own, "[192.0.2.25 15]", "with ip: [192.0.2.25]", and a
// relay with several, IPv4 and IPv6, retries from another). Numbers are
// left out too: Gmail's "[192.0.2.25 15]" and "[example.com 30]" may say
// 16 and 31 at the next attempt at the same message, and "Try again
// later (10)" counts; the deferral is the same one.
func Key(v Verdict, rcpt string, r reply.Reply) string {
	norm := Normalize(r.String())
	// Gmail ends each reply with "<session id> - gsmtp"; drop the id.
	if i := strings.LastIndex(norm, " - gsmtp"); i > 0 {
		if j := strings.LastIndexByte(norm[:i], ' '); j > 0 {
			norm = norm[:j] + norm[i:]
		}
	}
	words := strings.Fields(norm)
	for i, w := range words {
		core := strings.Trim(w, "[](),;.")
		switch _, err := netip.ParseAddr(core); {
		case core == "":
		case err == nil:
			words[i] = strings.Replace(w, core, "IP", 1)
		case strings.Trim(core, "0123456789") == "":
			words[i] = strings.Replace(w, core, "N", 1)
		}
	}
	norm = strings.Join(words, " ")
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d %s", r.Code, norm)))
	return v.Action.String() + " " + rcpt + " " + hex.EncodeToString(sum[:6])
}

// AlertLimiter lets an alert through once per cause per hour. Its zero
// value is ready; it is safe for concurrent use.
type AlertLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time // guarded by mu; cause -> last alert
}

// AlertEvery is how often one cause is alerted at most.
const AlertEvery = time.Hour

// Due reports whether an alert for cause is due at now, and if so
// remembers it.
func (l *AlertLimiter) Due(cause string, now time.Time) bool {
	return l.DueEvery(cause, now, AlertEvery)
}

// DueEvery is Due with a period of its own.
func (l *AlertLimiter) DueEvery(cause string, now time.Time, every time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[cause]; ok && now.Sub(t) < every && !now.Before(t) {
		return false
	}
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	l.last[cause] = now
	return true
}

// QueuedRefusal is the Refusal of recipient rcpt of a queued message: the
// client from the envelope ("local" for local pickup), the recipient's
// refusals acted on already from Envelope.Enforced.
func QueuedRefusal(env *spool.Envelope, rcpt, contentPath string, u Upstream) Refusal {
	return Refusal{ID: env.ID, Client: ClientIP(env.Client), ClientName: env.ClientName, Local: env.Client == "local", Own: env.Bounce, From: env.From,
		To: []string{rcpt}, Upstream: u, ContentPath: contentPath, Done: env.Enforced}
}
