// Package enforce reads why an upstream refused a relayed message and
// decides what to do about it: ban the client that submitted it, block the
// sender's domain, forward the message encapsulated, slow down, alert the
// administrator, report it, or nothing. Decide is the one decision, a pure
// function shared by the relay and the Postfix companion; they differ only
// in where a refusal comes from and how its Plan is carried out.
// It holds the rules (a built-in set for Gmail, replaceable by a file), the
// ban list, the welcomelist, the sender_access table it maintains, the
// encapsulated message, and the reply rewriting of Postfix's
// smtp_reply_filter.
package enforce

import "github.com/relaykeeper/relaykeeper/internal/reply"

// Action is what a rule says to do about a refusal.
type Action int

// The actions, as relay-enforcer names them.
const (
	// None: the refusal says nothing about the sender (no such user,
	// mailbox full, a passing problem).
	None Action = iota
	// Ban the IP of the client that submitted the message.
	Ban
	// BlockDomain adds the envelope sender's domain to sender_access.
	BlockDomain
	// Encapsulate re-sends the message as an attachment to its recipient:
	// the refusal is an artefact of forwarding (DMARC, SPF, DKIM).
	Encapsulate
	// Report tells the administrator: a refusal no rule knows.
	Report
	// Pace: the relay as a whole (or one recipient) goes too fast. Nobody
	// is sanctioned and the mail stays queued; the scheduler slows that
	// destination down.
	Pace
	// Alert: the relay's own set-up or account is at fault (TLS, PTR, the
	// daily sending limit, AUTH at the smarthost). The administrator is
	// told once per cause per hour; the mail stays queued; nobody is
	// sanctioned.
	Alert
)

var actionNames = [...]string{None: "none", Ban: "ban", BlockDomain: "block-domain", Encapsulate: "encapsulate",
	Report: "report", Pace: "pace", Alert: "alert"}

// Sanction reports whether the action punishes a client or a domain.
func (a Action) Sanction() bool { return a == Ban || a == BlockDomain }

// KeepsMail reports whether the message stays queued whatever the reply's
// code: the fault is the relay's pace or set-up, and the same mail goes
// through later.
func (a Action) KeepsMail() bool { return a == Pace || a == Alert }

func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action?"
}

// ParseAction is the inverse of Action.String.
func ParseAction(s string) (Action, bool) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), true
		}
	}
	return None, false
}

// Scope is what a pace or alert verdict holds back, for the scheduler that
// keeps the mail.
type Scope int

// The scopes.
const (
	// ScopeDestination: the whole destination (the relay goes too fast
	// there, or its own set-up is at fault).
	ScopeDestination Scope = iota
	// ScopeRecipient: that recipient only (Gmail's 4.2.1: it receives
	// mail too fast).
	ScopeRecipient
	// ScopeAccount: the smarthost account's sending quota (Gmail's 5.4.5
	// daily limit): everything through that account waits until the
	// quota window has passed.
	ScopeAccount
)

var scopeNames = [...]string{ScopeDestination: "destination", ScopeRecipient: "recipient", ScopeAccount: "account"}

func (s Scope) String() string {
	if s >= 0 && int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "scope?"
}

// ParseScope is the inverse of Scope.String.
func ParseScope(s string) (Scope, bool) {
	for i, n := range scopeNames {
		if n == s {
			return Scope(i), true
		}
	}
	return ScopeDestination, false
}

// Upstream is an upstream's refusal as the rules see it: the reply and
// where it came from. A Reply without a code holds only text in its
// Lines, as a test or a hand-written rule check gives it; the code and
// enhanced code are then read from the text.
type Upstream struct {
	// Reply is the refusal. Its String, each line keeping its
	// "550-5.7.1" prefix as Postfix logs it, is the text the rules match.
	Reply reply.Reply
	// Host is the upstream's host name or address, as far as known.
	Host string
	// Stage is what the reply answered: "mail", "rcpt", "data command"
	// (the DATA command, before the content), "data" (end of data), a stage before the transaction (see BeforeTransaction), or ""
	// if unknown.
	Stage string
}

// Verdict is the outcome of classifying an Upstream reply.
type Verdict struct {
	Action Action
	// Rule names the rule that matched (its name, or FILE:LINE), "" if
	// none did.
	Rule string
	// Domain is a domain the reply itself names, captured by the rule's
	// (?P<domain>...) group: for Gmail's SPF-domain rate limit, the
	// "example.com" of "[example.com 30]". It is a hint: the domain to
	// block is normally the envelope sender's, which only the caller knows.
	Domain string
	// Scope is what a pace or alert verdict holds back (the rule's scope).
	Scope Scope
}
