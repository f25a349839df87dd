package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// AccessMap is an access(5) table as the restrictions use it.
type AccessMap interface {
	// LookupAddressExt looks an address up in access(5)'s order, with
	// delims as Postfix's recipient_delimiter ("" for none).
	LookupAddressExt(addr, delims string) (string, bool)
	LookupClient(ip netip.Addr, hostname string) (string, bool)
}

// Blocklist is one DNS blocklist check (reject_rbl_client, --dnsbl).
type Blocklist interface {
	// Listed reports whether ip is listed, with the text for the reply.
	// An error means the lists could not be asked; the caller fails
	// open unless FailClosed.
	Listed(ctx context.Context, ip netip.Addr) (listed bool, text string, err error)
}

// Verifier is E-MailRelay's address verifier.
type Verifier interface {
	Verify(ctx context.Context, req *Request) Decision
}

// Tables opens the access tables that restrictions name
// ("hash:/etc/postfix/sender_access"). SetTables serves it from a
// table.Set.
type Tables interface {
	Open(spec string) (AccessMap, error)
}

// Blocklists makes the check for a reject_rbl_client argument
// ("zen.example=127.0.0.2").
type Blocklists interface {
	Open(zone string) (Blocklist, error)
}

// TrustedClients trusts clients beyond mynetworks; *auth.Secrets is one
// ("server none" lines). The keyword is the address verifier's auth id
// for a trusted client that did not log in.
type TrustedClients interface {
	Trusted(ip netip.Addr) (keyword string, ok bool)
}

// MailDomains checks that a domain can receive mail, for
// reject_unknown_sender_domain and reject_unknown_recipient_domain;
// *route.Resolver is one. MailDomain returns nil for a domain with MX
// records or an address. Its errors say Temporary() for a DNS failure
// and NullMX() for a domain that publishes a null MX (RFC 7505).
type MailDomains interface {
	MailDomain(ctx context.Context, domain string) error
}

// SenderOwners is Postfix's smtpd_sender_login_maps.
type SenderOwners interface {
	// Owners returns the logins that own sender; ok is false if nobody
	// does. auth.SenderLogins is one.
	Owners(sender string) (owners []string, ok bool)
}

// Options configure an Engine.
type Options struct {
	MyNetworks []netip.Prefix
	// MyNetworkTables are mynetworks given as lookup tables ("cidr:..."):
	// a client whose address has a result is in mynetworks.
	MyNetworkTables []*table.Table
	// MyNetworkRules are mynetworks as ParseNetworks reads the setting,
	// negations included, looked at before MyNetworks and
	// MyNetworkTables: the first rule that holds a client decides.
	MyNetworkRules []NetworkRule
	// MyNetworkSpec is mynetworks as written, which New reads with
	// ParseNetworks (its rules come after MyNetworkRules), opening its
	// tables in NetworkTables; ReloadLists reads its files again.
	MyNetworkSpec []string
	NetworkTables *table.Set
	// Trusted, if set, trusts more clients than MyNetworks: E-MailRelay's
	// "server none" secrets lines. With RemoteClients (clients from
	// anywhere may connect) and no Verifier, one that trusts every
	// address is refused, and trusts no one if it becomes one.
	Trusted       TrustedClients
	RemoteClients bool
	RelayDomains  []string
	// RelayRecipientMaps are Postfix's relay_recipient_maps: when set,
	// the only recipients accepted in RelayDomains.
	RelayRecipientMaps []string
	// RelayClientCerts are Postfix's relay_clientcerts: the client
	// certificate fingerprints permit_tls_clientcerts permits.
	RelayClientCerts []string
	// Postmaster is the relay's own postmaster (postmaster@DOMAIN, what
	// "RCPT TO:<Postmaster>" becomes): a destination for anyone, as RFC
	// 5321 section 4.5.1 requires of every SMTP server.
	Postmaster string
	// The restriction lists, each item as Postfix writes it
	// ("check_sender_access hash:/etc/postfix/sender_access").
	Client, Helo, Sender, Relay, Recipient []string
	// Data is Postfix's smtpd_data_restrictions, checked at DATA (and
	// at the first BDAT), with Recipient set only for a transaction of
	// one recipient, as in Postfix.
	Data []string
	// EndOfData is Postfix's smtpd_end_of_data_restrictions, checked
	// when the whole message has come and before it is accepted, with
	// Size the message's and QueueID its id.
	EndOfData []string
	// Mail is checked at MAIL FROM, before the other lists wait for RCPT
	// (Postfix's smtpd_delay_reject): the enforcer's blocked domains,
	// which must be refused at MAIL FROM.
	Mail []string
	// MailExempt are the clients Mail does not apply to: the enforcer's
	// welcomelist, whose clients its sanctions never touch. nil: none.
	MailExempt Welcomer
	// Tables opens the access tables named in restrictions; their
	// results are read by TableAction.
	Tables Tables
	// RecipientDelimiter is Postfix's recipient_delimiter: with "+",
	// check_sender_access and check_recipient_access also look up
	// user@domain for user+foo@domain.
	RecipientDelimiter string
	// Blocklists makes the checks for reject_rbl_client's arguments.
	Blocklists Blocklists
	// DNSLists makes those for reject_rhsbl_*, permit_dnswl_client and
	// permit_rhswl_client.
	DNSLists DNSLists
	// DNSBL is E-MailRelay's --dnsbl, checked before the lists for
	// every client outside mynetworks that has not logged in.
	DNSBL    Blocklist
	Verifier Verifier
	// RestrictionClasses are Postfix's smtpd_restriction_classes: names
	// for restriction lists, which table results may give by name
	// (RESTRICTION_CLASS_README's "insiders_only").
	RestrictionClasses map[string][]string
	// MailDomains answers reject_unknown_sender_domain and
	// reject_unknown_recipient_domain.
	MailDomains MailDomains
	// SenderOwners, with RejectSenderLoginMismatch, makes every list
	// start with reject_sender_login_mismatch.
	SenderOwners              SenderOwners
	RejectSenderLoginMismatch bool
	Log                       *slog.Logger
}

// restriction is one compiled list item.
type restriction struct {
	name  string
	item  string // as written, for errors
	check func(ctx context.Context, e *Engine, req *Request) Decision
	// warnOnly is Postfix's warn_if_reject in front of the item.
	warnOnly bool
}

// Engine evaluates the restriction lists. It is safe for concurrent use;
// tables reload underneath it on their own.
type Engine struct {
	opts  Options
	lists [8][]restriction
	// dnsblOff is the admin's "dnsbl stop": --dnsbl is not consulted.
	dnsblOff atomic.Bool
	// named are mynetworks' rules and relay_domains, replaced whole
	// when ReloadLists reads their files again.
	named  atomic.Pointer[fileLists]
	loader listLoader
	// relayRecipients are relay_recipient_maps (unlistedRelayRecipient).
	relayRecipients []keyLookup
	// relayClientCerts are relay_clientcerts (permit_tls_clientcerts).
	relayClientCerts []exactLookup
	// classes are the restriction classes by lower-case name, and
	// classNames their names for the table package; nested caches the
	// lists that table results and classes name, compiled once for each
	// list (whose wording they take).
	// needsNames: a restriction asks for the client's DNS names, so
	// the listener must look them up (NeedsClientNames).
	needsNames atomic.Bool
	// watchPipelining: reject_unauth_pipelining is in a list, so the
	// command layer must look for commands sent ahead.
	watchPipelining atomic.Bool
	classes         map[string][]string
	classNames      []string
	nested          sync.Map // nestKey -> nestEntry
}

// NeedsClientNames reports a restriction that needs each client's names
// looked up (reject_unknown_client_hostname and its reverse form), which
// the listener then does whatever smtp.client_names says.
func (e *Engine) NeedsClientNames() bool { return e.needsNames.Load() }

// ChecksData reports a data_restrictions list: without one, nothing is
// checked at DATA.
func (e *Engine) ChecksData() bool { return len(e.lists[dataList]) > 0 }

// ChecksEndOfData reports an end_of_data_restrictions list.
func (e *Engine) ChecksEndOfData() bool { return len(e.lists[eodList]) > 0 }

// WatchesPipelining reports reject_unauth_pipelining in a list: the
// listener must then look for commands sent ahead (Request.IllPipelining).
func (e *Engine) WatchesPipelining() bool { return e.watchPipelining.Load() }

// Welcomer says whether a client is on the enforcer's welcomelist
// (*enforce.Welcomelist); hostname is its verified name, "" if none.
type Welcomer interface {
	Welcome(ip netip.Addr, hostname string) bool
}

// The lists in the order they run at RCPT; the last one runs at MAIL.
var listNames = [8]string{"client_restrictions", "helo_restrictions", "sender_restrictions", "relay_restrictions",
	"recipient_restrictions", "mail_restrictions", "data_restrictions", "end_of_data_restrictions"}

const (
	recipientList = 4
	mailList      = 5
	dataList      = 6
	eodList       = 7
)

// listChecks is the access check whose reply wording each list shares.
var listChecks = [8]string{"check_client_access", "check_helo_access", "check_sender_access",
	"check_recipient_access", "check_recipient_access", "check_sender_access", "data", "end-of-data"}

// New compiles the restriction lists. Every bad item is reported, each
// naming its list.
func New(opts Options) (*Engine, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.NetworkTables == nil {
		opts.NetworkTables = &table.Set{} // MyNetworkSpec's tables, if it names any
	}
	e := &Engine{opts: opts}
	var errs []error
	var err error
	named, err := loadLists(&e.opts)
	if err != nil {
		errs = append(errs, err)
	}
	e.named.Store(named)
	if w := e.WideNetworks(); w != "" {
		opts.Log.Warn("policy: " + w)
	}
	if err := e.everyoneTrustedError(); err != nil {
		errs = append(errs, err)
	}
	if e.relayRecipients, err = openRelayRecipients(opts.RelayRecipientMaps, opts.Tables); err != nil {
		errs = append(errs, err)
	}
	if e.relayClientCerts, err = openExact("policy.relay_clientcerts", opts.RelayClientCerts, opts.Tables); err != nil {
		errs = append(errs, err)
	}
	e.classes = make(map[string][]string)
	byLower := make(map[string]string)
	for _, name := range slices.Sorted(maps.Keys(opts.RestrictionClasses)) {
		if table.IsRestriction(name) || needsArg[lower(name)] || name == "" || strings.ContainsAny(name, " \t,:") {
			errs = append(errs, &ListError{"restriction_classes." + name, name, errors.New("not a name for a restriction class (it must not be a restriction's name)")})
			continue
		}
		if other, dup := byLower[lower(name)]; dup {
			// Names match regardless of case: which list ran would
			// depend on map order.
			errs = append(errs, &ListError{"restriction_classes." + name, name, fmt.Errorf("the same class name as %q (class names match regardless of case)", other)})
			continue
		}
		byLower[lower(name)] = name
		e.classes[lower(name)] = opts.RestrictionClasses[name]
		e.classNames = append(e.classNames, name)
	}
	for _, name := range e.classNames {
		// Checked now, in the client list's wording; each list compiles
		// its own copy when a result names the class.
		if _, cerrs := e.compileItems(0, e.classes[lower(name)]); len(cerrs) > 0 {
			for _, ce := range cerrs {
				ce.List = "restriction_classes." + name
				errs = append(errs, ce)
			}
		}
	}
	for i, list := range [8][]string{opts.Client, opts.Helo, opts.Sender, opts.Relay, opts.Recipient, opts.Mail, opts.Data, opts.EndOfData} {
		rs, cerrs := e.compileItems(i, list)
		e.lists[i] = rs
		for _, ce := range cerrs {
			errs = append(errs, ce)
		}
	}
	if err := e.openRelayError(); err != nil {
		errs = append(errs, err)
	}
	return e, errors.Join(errs...)
}

var needsArg = map[string]bool{
	"check_client_access": true, "check_helo_access": true, "check_sender_access": true,
	"check_recipient_access": true, "reject_rbl_client": true, "check_policy_service": true,
	"check_reverse_client_hostname_access": true, "check_sasl_access": true, "check_ccert_access": true,
	"reject_rhsbl_client": true, "reject_rhsbl_reverse_client": true, "reject_rhsbl_helo": true,
	"reject_rhsbl_sender": true, "reject_rhsbl_recipient": true, "permit_dnswl_client": true,
	"permit_rhswl_client": true,
}

// oldNames are Postfix's names from before 2.3, which its main.cf files
// still carry and Postfix still reads.
var oldNames = map[string]string{
	"reject_invalid_hostname":  "reject_invalid_helo_hostname",
	"reject_non_fqdn_hostname": "reject_non_fqdn_helo_hostname",
	"reject_unknown_hostname":  "reject_unknown_helo_hostname",
}

func (e *Engine) compile(list int, name string, args []string) (restriction, error) {
	r := restriction{name: name}
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("takes %d argument(s), got %d", n, len(args))
		}
		return nil
	}
	if check, ok, err := e.compileDNSList(name, args); ok {
		r.check = check
		return r, err
	}
	if check, ok, err := e.compileCert(list, name, args); ok {
		r.check = check
		return r, err
	}
	if now, ok := oldNames[name]; ok {
		name = now
	}
	switch name {
	case "permit", "dunno", "reject", "defer":
		if err := want(0); err != nil {
			return r, err
		}
		d := map[string]Decision{
			"permit": {Verdict: Permit, Rule: name},
			"dunno":  {Rule: name},
			"reject": reject(554, "5.7.1", "Access denied", name),
			"defer":  deferral(450, "4.3.2", "Try again later", name),
		}[name]
		// Postfix names who is refused after the list: "<s@example.org>:
		// Sender address rejected: Access denied".
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			return e.fillText(d, listChecks[list], req)
		}
	case "permit_mynetworks":
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			if e.trusted(req.ClientIP) {
				return Decision{Verdict: Permit, Rule: name}
			}
			return Decision{}
		}
	case "permit_sasl_authenticated":
		r.check = func(_ context.Context, _ *Engine, req *Request) Decision {
			if req.AuthID != "" {
				return Decision{Verdict: Permit, Rule: name}
			}
			return Decision{}
		}
	case "reject_unauth_destination", "defer_unauth_destination", "permit_auth_destination":
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			if req.Recipient == "" {
				// data_restrictions with more than one recipient:
				// none to judge (Postfix: "if (state->recipient)").
				return Decision{}
			}
			ok := e.authDestination(req.Recipient)
			switch {
			case ok && name == "permit_auth_destination":
				return Decision{Verdict: Permit, Rule: name}
			case !ok && name == "reject_unauth_destination":
				return reject(554, "5.7.1", "<"+req.Recipient+">: Relay access denied", name)
			case !ok && name == "defer_unauth_destination":
				// Postfix's default relay restriction; its smtpd
				// answers 454 here, not defer_code's 450.
				return deferral(454, "4.7.1", "<"+req.Recipient+">: Relay access denied", name)
			}
			return Decision{}
		}
	case "check_client_access", "check_helo_access", "check_sender_access", "check_recipient_access",
		"check_reverse_client_hostname_access", "check_sasl_access":
		if err := want(1); err != nil {
			return r, err
		}
		if e.opts.Tables == nil {
			return r, errors.New("access tables are not available")
		}
		m, err := e.opts.Tables.Open(args[0])
		if err != nil {
			return r, err
		}
		if v, ok := m.(interface {
			ValidateResults(func(string) error) error
		}); ok {
			// A result that is no access(5) action ("REJCET",
			// "mysql:/x"), or a restriction list this engine cannot
			// run, would answer 451 to every client it matches; it is
			// refused now, with its file and line.
			if err := v.ValidateResults(func(v string) error { return e.validResult(v, list) }); err != nil {
				return r, err
			}
		}
		rule := name + " " + args[0]
		spare := list != mailList && name == "check_sender_access" && e.enforcerTable(args[0])
		if name == "check_reverse_client_hostname_access" {
			e.needsNames.Store(true)
		}
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			var v string
			var found bool
			switch name {
			case "check_client_access":
				// Postfix looks up a client without a verified name
				// by the name "unknown", then by its address.
				v, found = m.LookupClient(req.ClientIP, cmp.Or(req.ClientName, "unknown"))
			case "check_reverse_client_hostname_access":
				v, found = m.LookupClient(req.ClientIP, cmp.Or(req.ReverseName, "unknown"))
			case "check_sasl_access":
				// The login name as it is, exactly; nothing for a
				// client that did not log in.
				if k, ok := m.(interface{ Lookup(string) (string, bool) }); ok && req.AuthID != "" {
					v, found = k.Lookup(req.AuthID)
				}
			case "check_helo_access":
				if req.Helo != "" {
					v, found = m.LookupClient(netip.Addr{}, req.Helo)
				}
			case "check_sender_access":
				if spare && e.opts.MailExempt != nil && e.opts.MailExempt.Welcome(req.ClientIP, req.ClientName) {
					return Decision{} // the enforcer's blocks never touch it
				}
				key := req.Sender
				if key == "" {
					key = "<>"
				}
				v, found = m.LookupAddressExt(folded(key), e.opts.RecipientDelimiter)
			case "check_recipient_access":
				if req.Recipient != "" {
					v, found = m.LookupAddressExt(folded(req.Recipient), e.opts.RecipientDelimiter)
				}
			}
			if !found {
				return Decision{}
			}
			d, ok := e.accessResult(v, list, rule)
			if !ok {
				return d
			}
			if name == "check_recipient_access" && d.Verdict == Permit && routed(req.Recipient) {
				// Postfix: an OK for a recipient that names another
				// destination inside (user%other@relay, "u@other"@relay,
				// other!user@relay, a source route) is too suspicious to
				// permit; it counts as DUNNO, so that a table that
				// whitelists a relay domain does not open the relay.
				return Decision{Warnings: []string{rule + ": OK for the routed recipient <" + req.Recipient + "> ignored, as Postfix does"}}
			}
			return e.fillText(d, name, req)
		}
	case "reject_rbl_client":
		if err := want(1); err != nil {
			return r, err
		}
		if e.opts.Blocklists == nil {
			return r, errors.New("DNS blocklists are not available")
		}
		bl, err := e.opts.Blocklists.Open(args[0])
		if err != nil {
			return r, err
		}
		rule := name + " " + args[0]
		r.check = func(ctx context.Context, e *Engine, req *Request) Decision {
			return e.checkBlocklist(ctx, bl, rule, req)
		}
	case "reject_non_fqdn_sender", "reject_non_fqdn_recipient":
		r.check = func(_ context.Context, _ *Engine, req *Request) Decision {
			addr, what, code := req.Sender, "Sender", "5.5.2"
			if name == "reject_non_fqdn_recipient" {
				addr, what = req.Recipient, "Recipient"
			}
			if addr == "" {
				return Decision{}
			}
			a, err := envelope.Parse(addr)
			if err == nil && (a.IsLiteral() || strings.Contains(a.Domain, ".")) {
				return Decision{}
			}
			return reject(504, code, "<"+addr+">: "+what+" address rejected: need fully-qualified address", name)
		}
	case "reject_non_fqdn_helo_hostname", "reject_invalid_helo_hostname":
		r.check = func(_ context.Context, _ *Engine, req *Request) Decision {
			if req.Helo == "" {
				return Decision{}
			}
			if strings.HasPrefix(req.Helo, "[") {
				// Postfix's reject_invalid_hostaddr, for both.
				if _, err := envelope.Parse("x@" + req.Helo); err != nil {
					return reject(501, "5.5.2", "<"+req.Helo+">: Helo command rejected: Invalid name", name)
				}
				return Decision{}
			}
			// "localhost." is no more qualified than "localhost":
			// Postfix drops a trailing dot before it looks.
			h := trimDot(req.Helo)
			switch {
			case name == "reject_invalid_helo_hostname" && !validHostname(h) && !bareAddress(h):
				return reject(501, "5.5.2", "<"+req.Helo+">: Helo command rejected: Invalid name", name)
			case name == "reject_non_fqdn_helo_hostname" && (!validHostname(h) || !strings.Contains(h, ".")):
				return reject(504, "5.5.2", "<"+req.Helo+">: Helo command rejected: need fully-qualified hostname", name)
			}
			return Decision{}
		}
	case "reject_unauth_pipelining":
		e.watchPipelining.Store(true)
		// Postfix's reply; the client sent commands ahead where RFC
		// 2920 does not allow it (the command layer saw them waiting).
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			if !req.IllPipelining {
				return Decision{}
			}
			return e.fillText(reject(503, "5.5.0", "Improper use of SMTP command pipelining", name), listChecks[list], req)
		}
	case "reject_multi_recipient_bounce":
		// Postfix: a null sender with more than one recipient; at RCPT
		// the recipient that would be the second is refused.
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			most := 0
			if list == dataList || list == eodList {
				most = 1
			}
			if req.Sender != "" || req.RecipientCount <= most {
				return Decision{}
			}
			return e.fillText(reject(550, "5.5.3", "Multi-recipient bounce", name), listChecks[list], req)
		}
	case "reject_sender_login_mismatch", "reject_authenticated_sender_login_mismatch",
		"reject_unauthenticated_sender_login_mismatch", "reject_known_sender_login_mismatch":
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			if e.opts.SenderOwners == nil {
				return Decision{} // no auth.sender_login_maps: nobody owns a sender
			}
			switch name {
			case "reject_authenticated_sender_login_mismatch":
				// Only clients that logged in.
				if req.AuthID == "" {
					return Decision{}
				}
			case "reject_unauthenticated_sender_login_mismatch":
				// Only clients that did not: an owned sender needs a login.
				if req.AuthID != "" {
					return Decision{}
				}
			case "reject_known_sender_login_mismatch":
				// Only senders that have an owner.
				if _, ok := e.opts.SenderOwners.Owners(req.Sender); !ok {
					return Decision{}
				}
			}
			d := e.loginMismatch(req)
			d.Rule = name
			return d
		}
	case "reject_unknown_client_hostname", "reject_unknown_client", "reject_unknown_reverse_client_hostname":
		e.needsNames.Store(true)
		reverse := name == "reject_unknown_reverse_client_hostname"
		r.check = func(_ context.Context, e *Engine, req *Request) Decision {
			return unknownClient(req, reverse, name)
		}
	case "reject_unknown_helo_hostname":
		if e.opts.MailDomains == nil {
			return r, errors.New("needs a DNS resolver, and none is configured")
		}
		r.check = func(ctx context.Context, e *Engine, req *Request) Decision {
			return e.unknownHelo(ctx, req.Helo, name)
		}
	case "reject_unknown_sender_domain", "reject_unknown_recipient_domain":
		if e.opts.MailDomains == nil {
			return r, errors.New("needs a DNS resolver, and none is configured")
		}
		r.check = func(ctx context.Context, e *Engine, req *Request) Decision {
			if name == "reject_unknown_sender_domain" {
				return e.unknownDomain(ctx, req.Sender, "Sender", "1.8", name)
			}
			return e.unknownDomain(ctx, req.Recipient, "Recipient", "1.2", name)
		}
	case "check_policy_service":
		if err := want(1); err != nil {
			return r, err
		}
		svc, err := parsePolicyService(args[0])
		if err != nil {
			return r, err
		}
		r.check = func(ctx context.Context, e *Engine, req *Request) Decision {
			return e.askPolicy(ctx, svc, list, req)
		}
	default:
		if _, ok := e.classes[name]; !ok {
			return r, unknownRestriction(name)
		}
		if err := want(0); err != nil {
			return r, err
		}
		// A restriction class: its list runs in place, compiled when
		// first used (a class may name itself through a table; Check
		// stops at maxNesting).
		r.check = func(context.Context, *Engine, *Request) Decision {
			rs, err := e.nestedCompile(nestKey{list: list, spec: name, class: true})
			if err != nil {
				e.opts.Log.Error("restriction class does not compile", "class", name, "err", err)
				return deferral(451, "4.3.5", "Server configuration error", name)
			}
			return Decision{nested: rs, Rule: name}
		}
	}
	if len(args) > 0 && !needsArg[name] {
		// A main.cf line pasted as one item would otherwise be its first
		// restriction alone: "permit_mynetworks reject_unauth_destination"
		// an open relay.
		return r, fmt.Errorf("takes no argument, got %q: write one restriction per list item", strings.Join(args, " "))
	}
	return r, nil
}

// Check runs the lists for one recipient, or at StageMail the Mail list
// alone. Postfix's order: a Permit
// ends its own list only; a refusal ends everything.
func (e *Engine) Check(ctx context.Context, stage Stage, req *Request) Decision {
	final := Decision{Verdict: Permit}
	if stage == StageRcpt && e.opts.RejectSenderLoginMismatch && e.opts.SenderOwners != nil {
		if d := e.loginMismatch(req); d.Refuses() {
			return d
		}
	}
	// A client that logged in is spared, as permit_sasl_authenticated
	// ahead of reject_rbl_client spares it in Postfix: a roaming user's
	// dial-up or home address is what lists such as Spamhaus's PBL hold.
	if e.opts.DNSBL != nil && stage == StageRcpt && !e.dnsblOff.Load() && !e.trusted(req.ClientIP) && req.AuthID == "" {
		if d := e.checkBlocklist(ctx, e.opts.DNSBL, "dnsbl", req); d.Refuses() {
			return d
		}
	}
	first, n := 0, mailList
	switch stage {
	case StageMail:
		if e.opts.MailExempt != nil && e.opts.MailExempt.Welcome(req.ClientIP, req.ClientName) {
			return final
		}
		first, n = mailList, mailList+1
	case StageData:
		first, n = dataList, dataList+1
	case StageEndOfData:
		first, n = eodList, eodList+1
	}
	run := &checkRun{final: &final}
	for i := first; i < n; i++ {
		if i != recipientList {
			// Postfix clears DEFER_IF_REJECT at each stage (client,
			// helo, sender, then relay and recipient together);
			// DEFER_IF_PERMIT carries on to the recipient.
			run.ifReject = nil
		}
		if d, _ := e.runList(ctx, run, i, e.lists[i], req); d != nil {
			d.Warnings = run.warnings
			return *d
		}
		if final.Verdict == Discard {
			// Postfix applies no further restriction once a DISCARD
			// fired: the message is thrown away anyway.
			break
		}
	}
	warnings, ifPermit := run.warnings, run.ifPermit
	if ifPermit != nil {
		// Whatever else the verdict (OK, HOLD, DISCARD or no opinion),
		// the client is to try again; the verifier is not asked.
		d := *ifPermit
		d.Warnings, d.Discarding = warnings, final.Verdict == Discard
		return d
	}
	if stage == StageRcpt && final.Verdict != Discard {
		// Postfix checks the recipient tables after the lists (and
		// after a pending DEFER_IF_PERMIT has deferred), unless they
		// refused, whatever they permitted.
		if d, unlisted := e.unlistedRelayRecipient(req.Recipient); unlisted {
			d.Warnings = warnings
			return d
		}
	}
	if stage == StageRcpt && e.opts.Verifier != nil && req.Recipient != "" && final.Verdict != Discard {
		vreq := req
		if req.AuthID == "" && e.opts.Trusted != nil {
			// E-MailRelay gives the verifier a trusted client's
			// "server none" keyword as its auth id.
			if kw, ok := e.opts.Trusted.Trusted(req.ClientIP.Unmap()); ok {
				r := *req
				r.AuthID = kw
				vreq = &r
			}
		}
		d := e.opts.Verifier.Verify(ctx, vreq)
		if d.Refuses() {
			d.Warnings = warnings
			return d
		}
		final.Address, final.Mailbox = d.Address, d.Mailbox
	}
	final.Warnings = warnings
	return final
}

// Trusted reports whether ip is in mynetworks (or trusted otherwise).
func (e *Engine) Trusted(ip netip.Addr) bool { return e.trusted(ip) }

func (e *Engine) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	if e.opts.Trusted != nil && e.everyoneTrusted() == "" {
		if _, ok := e.opts.Trusted.Trusted(ip); ok {
			return true
		}
	}
	for _, r := range e.named.Load().nets {
		if r.matches(ip) {
			return !r.Not
		}
	}
	for _, p := range e.opts.MyNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	for _, t := range e.opts.MyNetworkTables {
		if _, ok := t.Lookup(ip.String()); ok {
			return true
		}
	}
	return false
}

// authDestination is Postfix's idea of a destination this relay serves for
// anyone: a domain in relay_domains, reached by a plain address. Addresses
// that name another destination inside (user%other@relay, other!user@relay,
// "user@other"@relay, source routes) never are: they are how open-relay
// probes get a relay to send elsewhere.
func (e *Engine) authDestination(rcpt string) bool {
	if e.opts.Postmaster != "" && strings.EqualFold(rcpt, e.opts.Postmaster) {
		return true
	}
	a, err := envelope.Parse(rcpt)
	if err != nil || a.Indirect() || a.IsLiteral() {
		return false
	}
	return e.named.Load().relay.has(a.Domain)
}

// fillText words a refusal as Postfix does: the table's text, or "Access
// denied", after "<address>: Sender address rejected: " and the like.
func (e *Engine) fillText(d Decision, check string, req *Request) Decision {
	if !d.Refuses() {
		return d
	}
	text := d.Text
	if text == "" {
		text = "Access denied"
	}
	d.Enhanced = addressDSN(d.Enhanced, check)
	switch check {
	case "check_client_access", "check_reverse_client_hostname_access":
		// Both name the client as Postfix's namaddr does: its verified
		// name, "unknown" without one, whatever name was looked up.
		class := "Client host"
		if check == "check_reverse_client_hostname_access" {
			class = "Unverified Client host"
		}
		d.Text = "<" + cmp.Or(req.ClientName, "unknown") + "[" + req.ClientIP.String() + "]>: " + class + " rejected: " + text
	case "check_sasl_access":
		d.Text = "<" + req.AuthID + ">: SASL login name rejected: " + text
	case "check_helo_access":
		d.Text = "<" + req.Helo + ">: Helo command rejected: " + text
	case "check_sender_access":
		d.Text = "<" + req.Sender + ">: Sender address rejected: " + text
	case "check_recipient_access":
		d.Text = "<" + req.Recipient + ">: Recipient address rejected: " + text
	case "data":
		d.Text = "<DATA>: Data command rejected: " + text
	case "end-of-data":
		d.Text = "<END-OF-MESSAGE>: End-of-data rejected: " + text
	}
	return d
}
