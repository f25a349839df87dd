// Package policy decides who may relay what, in Postfix's vocabulary:
// restriction lists (permit_mynetworks, permit_sasl_authenticated,
// reject_unauth_destination, check_*_access, reject_rbl_client, ...)
// evaluated in Postfix's order at RCPT time, access tables in Postfix's own
// formats, DNS blocklists and E-MailRelay's address verifier.
//
// A check returns a Decision value; it never writes SMTP. The SMTP edge turns
// a Decision into the reply the client hears, so wire text and Go errors
// stay apart.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Verdict is what a restriction concluded.
type Verdict int

// Verdicts, as Postfix's access(5) actions name them.
const (
	// Dunno: this restriction has no opinion; the next one decides.
	Dunno Verdict = iota
	// Permit ends the current restriction list with success (OK).
	Permit
	// Reject refuses with a 5xx reply.
	Reject
	// Defer refuses with a 4xx reply.
	Defer
	// Discard accepts the message and throws it away.
	Discard
	// Hold accepts the message and keeps it held until released.
	Hold
	// Drop ends the connection at once (the verifier's exit 100).
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Dunno:
		return "dunno"
	case Permit:
		return "permit"
	case Reject:
		return "reject"
	case Defer:
		return "defer"
	case Discard:
		return "discard"
	case Hold:
		return "hold"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Decision is a verdict with the reply that goes with it.
type Decision struct {
	Verdict Verdict
	// Code, Enhanced and Text are the SMTP reply for Reject and Defer;
	// Text is an access table's text for Hold and Discard, for the log.
	Code     int
	Enhanced string
	Text     string
	// Rule names what decided, for the logs ("check_sender_access
	// hash:/etc/postfix/sender_access").
	Rule string
	// Warnings are WARN results met on the way, for the log.
	Warnings []string
	// Filter is a FILTER transport:destination result, kept for the
	// content-filter loop.
	Filter string
	// Prepend are PREPEND results ("X-Header: text"), header fields to
	// put before the relay's Received header, as Postfix's smtpd does.
	Prepend []string
	// Redirect is a REDIRECT result, the message's only recipient once
	// accepted; BCC are BCC results, recipients added to it.
	Redirect string
	BCC      []string
	// Address, if set, replaces the recipient (the verifier's rewrite).
	Address string
	// Mailbox is set for a recipient the verifier calls local.
	Mailbox string
	// Discarding is set on a DEFER_IF_PERMIT's deferral of a recipient
	// that a DISCARD let through: as in Postfix's smtpd, the transaction
	// is to be discarded all the same, so that its later recipients are
	// checked no more and accepted.
	Discarding bool
	// deferIf marks a DEFER_IF_PERMIT or DEFER_IF_REJECT result (its
	// reply in Code, Enhanced and Text): Check keeps it for later
	// instead of refusing now.
	deferIf deferIf
	// nested is a restriction list that a table result named
	// ("permit_mynetworks, reject", or a restriction class): Check runs
	// it in place of this decision.
	nested []restriction
}

type deferIf int

const (
	deferIfNone deferIf = iota
	deferIfPermit
	deferIfReject
)

// Reply is the decision's SMTP reply on one line: "554 5.7.1 text".
func (d Decision) Reply() string {
	if d.Enhanced != "" {
		return fmt.Sprintf("%d %s %s", d.Code, d.Enhanced, d.Text)
	}
	return fmt.Sprintf("%d %s", d.Code, d.Text)
}

// Refuses reports a decision that refuses the command.
func (d Decision) Refuses() bool {
	return d.Verdict == Reject || d.Verdict == Defer || d.Verdict == Drop
}

// reject and defer build refusals.
func reject(code int, enhanced, text, rule string) Decision {
	return Decision{Verdict: Reject, Code: code, Enhanced: enhanced, Text: text, Rule: rule}
}

func deferral(code int, enhanced, text, rule string) Decision {
	return Decision{Verdict: Defer, Code: code, Enhanced: enhanced, Text: text, Rule: rule}
}

// Request is what a check knows about the client and the transaction.
type Request struct {
	ClientIP netip.Addr
	// ClientAddr is ip:port, for the verifier.
	ClientAddr string
	// ClientName is the client's verified host name, or "" if unknown.
	ClientName string
	// ReverseName is the client's first PTR name, verified or not ("" if
	// none), and NameTempFail that DNS failed while looking (Postfix's
	// reverse_client_name, and the 4xx of its unknown-client checks).
	ReverseName  string
	NameTempFail bool
	Helo         string
	// AuthID is the SASL identity, "" if the client did not log in;
	// AuthMech the mechanism used.
	AuthID   string
	AuthMech string
	TLS      bool
	// Sender is the MAIL FROM address; "" for the null sender.
	Sender string
	// Recipient is the RCPT TO address; "" when checking MAIL, and at
	// DATA unless the transaction has one recipient.
	Recipient string
	// RecipientCount is the number of recipients accepted so far (at
	// DATA, all of them).
	RecipientCount int
	// CertFingerprint and PubKeyFingerprint are the client certificate's
	// SHA-256 fingerprints in Postfix's form ("D7:04:..."), "" without
	// one; CertVerified says it verified against the client CAs.
	CertFingerprint, PubKeyFingerprint string
	CertVerified                       bool
	// Lists, if set, keeps the session's DNS list answers about its
	// client (one per session, ListCache).
	Lists *ListCache
	// CertCN and CertIssuerCN are the client certificate's subject and
	// issuer CommonNames (Postfix's peer_CN and issuer_CN); a
	// check_ccert_access refusal names the first.
	CertCN, CertIssuerCN string
	// IllPipelining: the client sent commands ahead where RFC 2920 does
	// not allow it (reject_unauth_pipelining).
	IllPipelining bool

	// For policy services (check_policy_service): the SIZE the client
	// declared, a name for the transaction (Postfix's instance), the
	// listener's ip:port, and the TLS version, cipher and key size in
	// Postfix's words (PostfixTLS; "" and 0 without TLS).
	Size     int64
	Instance string
	QueueID  string // the message's id, known at the end of data
	// ProtocolName is SMTP after HELO, ESMTP after EHLO ("" is ESMTP).
	ProtocolName           string
	ServerAddr             string
	TLSProtocol, TLSCipher string
	TLSKeySize             int
}

// Stage is where in the session a check runs.
type Stage int

// Stages at which restrictions run.
const (
	StageMail Stage = iota
	StageRcpt
	// StageData is the DATA command (or the first BDAT): Postfix's
	// smtpd_data_restrictions.
	StageData
	// StageEndOfData is the end of the message, before its reply:
	// Postfix's smtpd_end_of_data_restrictions.
	StageEndOfData
)

func lower(s string) string { return strings.ToLower(s) }

// unknownRestriction is the error for a restriction name the engine does
// not know. One with a comma was copied from main.cf, whose lists are
// comma-separated.
func unknownRestriction(name string) error {
	if strings.Contains(name, ",") {
		return errors.New("unknown restriction: main.cf's list is comma-separated, this one is not: write one restriction per list item, without the comma")
	}
	return errors.New("unknown restriction")
}
