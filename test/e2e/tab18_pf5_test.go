package e2e

import (
	"strings"
	"testing"
)

// Differential tests (see rev-pf5_test.go) of the access actions at the
// stages TestRevPF5SenderActions does not reach, and of table-file
// details: comments, continuation lines, duplicate keys, inline: and
// static: tables.

const tab18Base = `mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
`

var tab18BaseCF = []string{"mynetworks = 127.0.0.1/32", "relay_domains = relay.example",
	"smtpd_restriction_classes = pf5_class", "pf5_class = reject_unauth_destination, permit"}

// TestTab18RecipientActions: check_recipient_access with every result,
// from inside and outside mynetworks, several recipients a transaction.
func TestTab18RecipientActions(t *testing.T) {
	t.Parallel()
	var rcpts []string
	for _, d := range pf5ActionDomains() {
		if d != "c421.example" {
			rcpts = append(rcpts, "r@"+d)
		}
	}
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		dlg = append(dlg, pf5Session(from, "client.example", pf5Tx("s@example.org", rcpts...)))
		dlg = append(dlg, pf5Session(from, "client.example", pf5Tx("s@example.org", "r@other.example", "r@dip.example", "r@relay.example", "r@dir.example", "r@reject.example")))
		dlg = append(dlg, pf5Session(from, "client.example", pf5Tx("s@example.org", "r@c421.example", "r@relay.example")))
	}
	pf5Run(t, pf5Scenario{
		name:   "recipient actions",
		files:  map[string]string{"hash:DIR/rcpt": pf5Actions},
		mainCF: append(tab18BaseCF, "smtpd_recipient_restrictions = check_recipient_access hash:DIR/rcpt"),
		toml: "[policy]\n" + tab18Base + `recipient_restrictions = ["check_recipient_access hash:DIR/rcpt"]
[policy.restriction_classes]
pf5_class = ["reject_unauth_destination", "permit"]
`,
		dialogues: dlg,
	})
}

// TestTab18HeloActions: check_helo_access with every result; the HELO
// stage comes before the sender and recipient stages.
func TestTab18HeloActions(t *testing.T) {
	t.Parallel()
	var dlg []pf5Dialogue
	for _, d := range pf5ActionDomains() {
		for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
			dlg = append(dlg, pf5Session(from, d, pf5Tx("s@example.org", "r@relay.example", "r@other.example", "r@reject.example")))
		}
	}
	pf5Run(t, pf5Scenario{
		name:  "helo actions",
		files: map[string]string{"DIR/helo": pf5Actions, "hash:DIR/rcpt": "reject.example REJECT rcpt table\n"},
		mainCF: append(tab18BaseCF, "smtpd_helo_restrictions = check_helo_access texthash:DIR/helo",
			"smtpd_recipient_restrictions = check_recipient_access hash:DIR/rcpt"),
		toml: "[policy]\n" + tab18Base + `helo_restrictions = ["check_helo_access texthash:DIR/helo"]
recipient_restrictions = ["check_recipient_access hash:DIR/rcpt"]
[policy.restriction_classes]
pf5_class = ["reject_unauth_destination", "permit"]
`,
		dialogues: dlg,
	})
}

// TestTab18DataActions: check_sender_access in smtpd_data_restrictions
// and smtpd_end_of_data_restrictions with every result.
func TestTab18DataActions(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"data", "end_of_data"} {
		t.Run(stage, func(t *testing.T) {
			var dlg []pf5Dialogue
			for _, d := range pf5ActionDomains() {
				for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
					// At DATA the go-ahead is not certain: an unexpected
					// 354 gets an empty message (pf5Dialog).
					cmds := []string{"EHLO client.example", "MAIL FROM:<s@" + d + ">", "RCPT TO:<r@relay.example>", "DATA", "RSET",
						"MAIL FROM:<s@" + d + ">", "RCPT TO:<r@relay.example>", "RCPT TO:<r2@relay.example>", "DATA", "QUIT"}
					if stage == "end_of_data" {
						cmds = []string{"EHLO client.example", "MAIL FROM:<s@" + d + ">", "RCPT TO:<r@relay.example>", "DATA", "BODY Subject: x||body",
							"MAIL FROM:<s@" + d + ">", "RCPT TO:<r@relay.example>", "RCPT TO:<r2@relay.example>", "DATA", "BODY Subject: x||body", "QUIT"}
					}
					dl := pf5Dialogue{from: from, cmds: cmds}
					switch {
					case stage == "end_of_data" && d != "c421.example":
						// docs/policy.md: after a refused final dot the
						// transaction is over (Postfix keeps it: "503
						// 5.5.1 Error: nested MAIL command").
						dl.intended = map[string]string{"MAIL FROM:<s@" + d + ">": "250 2.1.0 Ok"}
					case d == "permitrej.example" && from != "127.0.0.1":
						// docs/tables.md: a restriction list found in
						// a table words a refusal as the list it runs in.
						dl.intended = map[string]string{"DATA": "554 5.7.1 <DATA>: Data command rejected: Access denied"}
					}
					dlg = append(dlg, dl)
				}
			}
			pf5Run(t, pf5Scenario{
				name:   stage + " actions",
				files:  map[string]string{"hash:DIR/sender": pf5Actions},
				mainCF: append(tab18BaseCF, "smtpd_"+stage+"_restrictions = check_sender_access hash:DIR/sender"),
				toml: "[policy]\n" + tab18Base + stage + `_restrictions = ["check_sender_access hash:DIR/sender"]
[policy.restriction_classes]
pf5_class = ["reject_unauth_destination", "permit"]
`,
				dialogues: dlg,
			})
		})
	}
}

// TestTab18TableSyntax: comments, continuation lines, duplicate keys,
// "@domain" keys, odd spacing and upper-case keys and values, in hash,
// btree and texthash tables, and the same as inline: and static: specs.
func TestTab18TableSyntax(t *testing.T) {
	t.Parallel()
	table := "# a comment\n" +
		"   # an indented comment\n" +
		"cont.example REJECT first part\n" +
		"  second part\n" +
		"\n" +
		"\tthird part after a blank line\n" +
		"dup.example REJECT first wins\n" +
		"dup.example REJECT second loses\n" +
		"DUP2.example REJECT upper first\n" +
		"dup2.example REJECT lower second\n" +
		"@at.example REJECT at domain\n" +
		"spaced.example    \t  REJECT   lots   of   space   \n" +
		"upper.example reject Upper Case Text\n" +
		"hash.example REJECT text # not a comment\n" +
		"onlycode.example 550\n" +
		"codeenh.example 550 5.7.1\n" +
		"tab.example\tREJECT\ttabbed\n"
	var senders [][]string
	for _, s := range []string{"a@cont.example", "a@dup.example", "a@dup2.example", "a@at.example", "a@sub.at.example",
		"a@spaced.example", "a@upper.example", "a@hash.example", "a@num.example", "a@onlycode.example", "a@codeenh.example", "a@tab.example"} {
		// A recipient of its own, to tell the replies apart.
		senders = append(senders, pf5Tx(s, strings.TrimSuffix(strings.TrimPrefix(s, "a@"), ".example")+"@relay.example"))
	}
	for _, typ := range []string{"hash", "btree", "texthash"} {
		t.Run(typ, func(t *testing.T) {
			file, content := "DIR/access", table
			if typ != "texthash" {
				file = typ + ":DIR/access"
			} else {
				// Postfix's smtpd cannot open a texthash table with
				// a duplicate key (docs/tables.md).
				content = strings.NewReplacer("dup.example REJECT second loses\n", "", "dup2.example REJECT lower second\n", "").Replace(table)
			}
			pf5Run(t, pf5Scenario{
				name:  typ + " syntax",
				files: map[string]string{file: content},
				// docs/tables.md: a code without text says "Access
				// denied" (Postfix 3.7 says whatever its buffer held).
				intended: map[string]string{"RCPT TO:<codeenh@relay.example>": "550 5.7.1 <a@codeenh.example>: Sender address rejected: Access denied"},
				mainCF:   append(tab18BaseCF, "smtpd_sender_restrictions = check_sender_access "+typ+":DIR/access"),
				toml: "[policy]\n" + tab18Base + `sender_restrictions = ["check_sender_access ` + typ + `:DIR/access"]
`,
				dialogues: []pf5Dialogue{pf5Session("127.0.0.2", "client.example", senders...)},
			})
		})
	}
	specs := []string{
		"inline:{ a.example=REJECT, { b.example = REJECT two words }, {c.example=550 5.7.1 inline five}, {d.example=DUNNO}, B.example=OK }",
		"static:REJECT",
		"static:{ 550 5.7.1 static with spaces }",
		"static:DUNNO",
	}
	for _, spec := range specs {
		t.Run(strings.SplitN(spec, ":", 2)[0], func(t *testing.T) {
			var txs [][]string
			for _, s := range []string{"x@a.example", "x@sub.b.example", "x@c.example", "x@d.example", "x@b.example", "x@e.example"} {
				txs = append(txs, pf5Tx(s, "r@relay.example", "r@other.example"))
			}
			pf5Run(t, pf5Scenario{
				name:   spec,
				mainCF: append(tab18BaseCF, "smtpd_sender_restrictions = check_sender_access "+spec),
				toml: "[policy]\n" + tab18Base + `sender_restrictions = ["check_sender_access ` + spec + `"]
`,
				dialogues: []pf5Dialogue{pf5Session("127.0.0.2", "client.example", txs...)},
			})
		})
	}
}

// TestTab18DSNFix: enhanced status codes of the x.1.y (address) kind in
// access results, at each stage: Postfix's smtpd_dsn_fix makes them agree
// with what the stage checks (a sender's, a recipient's).
func TestTab18DSNFix(t *testing.T) {
	t.Parallel()
	var table strings.Builder
	var keys []string
	for _, c := range []string{"550 5.1.0", "550 5.1.1", "550 5.1.2", "550 5.1.3", "550 5.1.6", "550 5.1.7", "550 5.1.8", "550 5.1.10",
		"450 4.1.1", "450 4.1.8", "REJECT 5.1.1", "REJECT 5.1.8", "DEFER 4.1.2", "550 5.2.1", "550 5.7.1", "450 4.1.7", "550 5.1.9", "DEFER_IF_PERMIT 4.1.1",
		"550 5.1.5", "550 5.1.4", "REJECT 4.1.1", "550 2.1.5"} {
		k := strings.NewReplacer(" ", "-", ".", "-", "_", "-").Replace(strings.ToLower(c)) + ".example"
		keys = append(keys, k)
		table.WriteString(k + " " + c + " text\n")
	}
	var dlg []pf5Dialogue
	for _, k := range keys {
		dlg = append(dlg, pf5Session("127.0.0.2", k, pf5Tx("s@example.org", "r@relay.example")))
		dlg = append(dlg, pf5Session("127.0.0.2", "client.example", pf5Tx("s@"+k, "r@relay.example")))
		// From mynetworks, so that the recipient gets past the relay
		// restrictions to its own.
		dlg = append(dlg, pf5Session("127.0.0.1", "client.example", pf5Tx("s@example.org", "r@"+k)))
	}
	pf5Run(t, pf5Scenario{
		name:  "dsn fix",
		files: map[string]string{"hash:DIR/access": table.String()},
		mainCF: append(tab18BaseCF, "smtpd_helo_restrictions = check_helo_access hash:DIR/access",
			"smtpd_sender_restrictions = check_sender_access hash:DIR/access",
			"smtpd_recipient_restrictions = check_recipient_access hash:DIR/access"),
		toml: "[policy]\n" + tab18Base + `helo_restrictions = ["check_helo_access hash:DIR/access"]
sender_restrictions = ["check_sender_access hash:DIR/access"]
recipient_restrictions = ["check_recipient_access hash:DIR/access"]
`,
		dialogues: dlg,
	})
}

// TestTab18Underscore: an underscore in an address's domain, which DNS
// names may have and Postfix takes without a restriction asking.
func TestTab18Underscore(t *testing.T) {
	t.Parallel()
	dlg := []pf5Dialogue{pf5Session("127.0.0.2", "client.example", pf5Tx("s@a_b.example", "r@relay.example", "r@x_y.relay.example"),
		pf5Tx("s@x-y_z-1.example", "r@relay.example"), pf5Tx("s_t@example.org", "r_t@relay.example"),
		pf5Tx("s@sub.bad_dom.example", "r@relay.example"), pf5Tx("s@_x", "r@relay.example"), pf5Tx("s@example.org", "r@_x", "r@bad_dom.example"))}
	pf5Run(t, pf5Scenario{
		name:      "underscore",
		mainCF:    tab18BaseCF,
		toml:      "[policy]\n" + tab18Base,
		dialogues: dlg,
	})
	pf5Run(t, pf5Scenario{
		name:  "underscore, checked",
		files: map[string]string{"hash:DIR/access": "bad_dom.example REJECT underscore domain\n"},
		mainCF: append(tab18BaseCF, "smtpd_sender_restrictions = reject_non_fqdn_sender, check_sender_access hash:DIR/access",
			"smtpd_recipient_restrictions = reject_non_fqdn_recipient, check_recipient_access hash:DIR/access"),
		toml: "[policy]\n" + tab18Base + `sender_restrictions = ["reject_non_fqdn_sender", "check_sender_access hash:DIR/access"]
recipient_restrictions = ["reject_non_fqdn_recipient", "check_recipient_access hash:DIR/access"]
`,
		dialogues: dlg,
	})
}

// TestTab18Unknown: reject_unknown_* (the sandbox's DNS knows none of
// these names), each behind warn_if_reject once, and the client
// restrictions' DEFER_IF_PERMIT and DEFER_IF_REJECT from a cidr:{...}
// table meeting them.
func TestTab18Unknown(t *testing.T) {
	t.Parallel()
	for _, l := range []struct{ name, pf, rk string }{
		{"client", "smtpd_client_restrictions = check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT dip}, {127.0.0.4 DEFER_IF_REJECT dir}, {127.0.0.5 OK} }, reject_unknown_reverse_client_hostname",
			`client_restrictions = ["check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT dip}, {127.0.0.4 DEFER_IF_REJECT dir}, {127.0.0.5 OK} }", "reject_unknown_reverse_client_hostname"]`},
		{"client warn", "smtpd_client_restrictions = warn_if_reject reject_unknown_client_hostname, check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT dip} }",
			`client_restrictions = ["warn_if_reject", "reject_unknown_client_hostname", "check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT dip} }"]`},
		{"helo", "smtpd_helo_restrictions = check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT dip}, {127.0.0.4 DEFER_IF_REJECT dir} }, reject_unknown_helo_hostname",
			`helo_restrictions = ["check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT dip}, {127.0.0.4 DEFER_IF_REJECT dir} }", "reject_unknown_helo_hostname"]`},
	} {
		t.Run(l.name, func(t *testing.T) {
			var dlg []pf5Dialogue
			for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
				for _, helo := range []string{"client.example", "[127.0.0.1]"} {
					dlg = append(dlg, pf5Session(from, helo, pf5Tx("s@example.org", "r@relay.example", "r@other.example")))
				}
			}
			pf5Run(t, pf5Scenario{
				name: "unknown " + l.name,
				// Names are looked up for these restrictions whatever
				// smtp.client_names says (docs/policy.md); Postfix's
				// smtpd_peername_lookup is then yes as by default.
				mainCF:    append(tab18BaseCF, l.pf, "smtpd_peername_lookup = yes"),
				toml:      "[policy]\n" + tab18Base + l.rk + "\n",
				dialogues: dlg,
			})
		})
	}
}

// TestTab18CrossLists: lookups in lists not their own (a recipient table
// among the sender restrictions, a client table among the recipient
// ones), regexp: and pcre: recipient tables, and a cidr: file with IPv6
// networks among the IPv4 ones.
func TestTab18CrossLists(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"DIR/rcpt.regexp": "/^bad@/ REJECT bad local part\n/@(regex)\\.example$/ 550 5.1.1 domain $1\n/^dip@/ DEFER_IF_PERMIT later\n/^ok@/ OK\n",
		"DIR/client.cidr": "# v6 first\n2001:db8::/32 REJECT v6 net\n[::1] REJECT v6 loopback\n127.0.0.2 REJECT v4 host\n127.0.0.0/29 DUNNO\n127.0.0.0/8 550 5.7.1 the rest\n",
		"hash:DIR/sender": "s.example REJECT sender table\n",
	}
	rcpts := []string{"bad@relay.example", "a@regex.example", "dip@relay.example", "ok@other.example", "a@relay.example"}
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.9"} {
		dlg = append(dlg, pf5Session(from, "client.example", pf5Tx("s@example.org", rcpts...), pf5Tx("x@s.example", rcpts...)))
	}
	for _, typ := range []string{"regexp", "pcre"} {
		t.Run(typ, func(t *testing.T) {
			pf5Run(t, pf5Scenario{
				name:  "cross " + typ,
				files: files,
				mainCF: append(tab18BaseCF,
					"smtpd_sender_restrictions = check_recipient_access "+typ+":DIR/rcpt.regexp",
					"smtpd_recipient_restrictions = check_client_access cidr:DIR/client.cidr, check_sender_access hash:DIR/sender"),
				toml: "[policy]\n" + tab18Base + `sender_restrictions = ["check_recipient_access ` + typ + `:DIR/rcpt.regexp"]
recipient_restrictions = ["check_client_access cidr:DIR/client.cidr", "check_sender_access hash:DIR/sender"]
`,
				dialogues: dlg,
			})
		})
	}
}

// TestTab18KeyForms: keys that look like the forms Postfix looks up but
// are not (a trailing dot, brackets, a network in a hash table, angle
// brackets, an "@domain" key), which must match nothing, beside the ones
// that are.
func TestTab18KeyForms(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"hash:DIR/client": "127.0.0.2. REJECT trailing dot\n[127.0.0.3] REJECT brackets\n127.0.0.4/32 REJECT network\n127.000.000.005 REJECT zeros\n127.0.0.6 REJECT six\n",
		"hash:DIR/sender": "trail.example. REJECT trailing dot\n<s@angle.example> REJECT angle\n@at.example REJECT at domain\nUPPER@ REJECT upper user\n" +
			"*.star.example REJECT star\n.dot.example REJECT dot\n\"q\"@quote.example REJECT quoted key\nmixed@Case.Example REJECT mixed\n",
	}
	var stx [][]string
	for _, s := range []string{"s@trail.example", "s@angle.example", "s@at.example", "upper@x.example", "s@a.star.example",
		"s@dot.example", "s@a.dot.example", "q@quote.example", "MIXED@case.example"} {
		stx = append(stx, pf5Tx(s, strings.NewReplacer("@", "-", ".", "-").Replace(s)+"@relay.example"))
	}
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		dlg = append(dlg, pf5Session(from, "client.example", pf5Tx("s@example.org", "r@relay.example")))
	}
	dlg = append(dlg, pf5Session("127.0.0.7", "client.example", stx...))
	pf5Run(t, pf5Scenario{
		name:  "key forms",
		files: files,
		mainCF: append(tab18BaseCF, "smtpd_client_restrictions = check_client_access hash:DIR/client",
			"smtpd_sender_restrictions = check_sender_access hash:DIR/sender"),
		toml: "[policy]\n" + tab18Base + `client_restrictions = ["check_client_access hash:DIR/client"]
sender_restrictions = ["check_sender_access hash:DIR/sender"]
`,
		dialogues: dlg,
		// docs/tables.md: ".domain" keys match subdomains.
		intended: map[string]string{"RCPT TO:<s-a-dot-example@relay.example>": "554 5.7.1 <s@a.dot.example>: Sender address rejected: dot"},
	})
}

// TestTab18Classes: restriction classes that look tables up whose results
// name other classes, classes and lists as results in every list, and
// the relay restrictions' OK from a recipient table.
func TestTab18Classes(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"hash:DIR/outer": "a.example inner_class\nb.example permit_mynetworks, inner_class\nc.example reject_unauth_destination, permit_auth_destination\n" +
			"d.example check_class\ne.example defer_class\n",
		"hash:DIR/inner": "a.example REJECT inner a\nb.example OK\nx.example 450 4.7.1 inner x\n",
		"hash:DIR/rcpt":  "open.example OK\nclosed.example REJECT closed\n",
	}
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		for _, helo := range []string{"a.example", "b.example", "c.example", "d.example", "e.example"} {
			var txs [][]string
			for _, s := range []string{"s@a.example", "s@b.example", "s@c.example", "s@d.example", "s@e.example", "s@x.example"} {
				txs = append(txs, pf5Tx(s, "r@relay.example", "r@other.example", "r@open.example", "r@closed.example", "r@a.example"))
			}
			dlg = append(dlg, pf5Session(from, helo, txs...))
		}
	}
	pf5Run(t, pf5Scenario{
		name:  "classes",
		files: files,
		mainCF: []string{"mynetworks = 127.0.0.1/32", "relay_domains = relay.example",
			"smtpd_restriction_classes = inner_class, check_class, defer_class",
			"inner_class = check_sender_access hash:DIR/inner, check_recipient_access hash:DIR/inner",
			"check_class = check_helo_access hash:DIR/inner, permit",
			"defer_class = defer",
			"smtpd_helo_restrictions = check_helo_access hash:DIR/outer",
			"smtpd_sender_restrictions = check_sender_access hash:DIR/outer",
			"smtpd_relay_restrictions = permit_mynetworks, check_recipient_access hash:DIR/rcpt, reject_unauth_destination",
			"smtpd_recipient_restrictions = check_recipient_access hash:DIR/outer"},
		toml: "[policy]\n" + tab18Base + `helo_restrictions = ["check_helo_access hash:DIR/outer"]
sender_restrictions = ["check_sender_access hash:DIR/outer"]
relay_restrictions = ["permit_mynetworks", "check_recipient_access hash:DIR/rcpt", "reject_unauth_destination"]
recipient_restrictions = ["check_recipient_access hash:DIR/outer"]
[policy.restriction_classes]
inner_class = ["check_sender_access hash:DIR/inner", "check_recipient_access hash:DIR/inner"]
check_class = ["check_helo_access hash:DIR/inner", "permit"]
defer_class = ["defer"]
`,
		dialogues: dlg,
	})
}

// TestTab18DeferIf: DEFER_IF_PERMIT and DEFER_IF_REJECT in each stage,
// meeting OK, REJECT and the other DEFER_IF_* in the stages after it,
// then DATA.
func TestTab18DeferIf(t *testing.T) {
	t.Parallel()
	table := "rej.example REJECT rej\nok.example OK\ndip.example DEFER_IF_PERMIT dip\ndir.example DEFER_IF_REJECT dir\nhold.example HOLD\ndisc.example DISCARD\n"
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		for _, s := range []string{"s@rej.example", "s@ok.example", "s@dip.example", "s@dir.example", "s@hold.example", "s@none.example"} {
			cmds := []string{"EHLO client.example", "MAIL FROM:<" + s + ">"}
			for _, r := range []string{"r@rej.example", "r@ok.example", "r@dip.example", "r@dir.example", "r@disc.example", "r@relay.example", "r@other.example"} {
				cmds = append(cmds, "RCPT TO:<"+r+">")
			}
			dlg = append(dlg, pf5Dialogue{from: from, cmds: append(cmds, "DATA", "QUIT")})
		}
	}
	pf5Run(t, pf5Scenario{
		name:  "defer_if",
		files: map[string]string{"hash:DIR/access": table},
		mainCF: append(tab18BaseCF,
			"smtpd_client_restrictions = check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT client dip}, {127.0.0.4 DEFER_IF_REJECT client dir} }",
			"smtpd_sender_restrictions = check_sender_access hash:DIR/access",
			"smtpd_recipient_restrictions = check_recipient_access hash:DIR/access"),
		toml: "[policy]\n" + tab18Base + `client_restrictions = ["check_client_access cidr:{ {127.0.0.3 DEFER_IF_PERMIT client dip}, {127.0.0.4 DEFER_IF_REJECT client dir} }"]
sender_restrictions = ["check_sender_access hash:DIR/access"]
recipient_restrictions = ["check_recipient_access hash:DIR/access"]
`,
		dialogues: dlg,
	})
}

// TestTab18WarnIfReject: warn_if_reject in front of table lookups whose
// results refuse, defer, defer if permitted or name a list, and in front
// of reject_unauth_destination itself.
func TestTab18WarnIfReject(t *testing.T) {
	t.Parallel()
	table := "rej.example REJECT rej\ndef.example DEFER def\ndip.example DEFER_IF_PERMIT dip\nlist.example reject_unauth_destination\nc550.example 550 5.7.1 five fifty\n"
	var txs [][]string
	for _, s := range []string{"s@rej.example", "s@def.example", "s@dip.example", "s@list.example", "s@c550.example", "s@none.example"} {
		txs = append(txs, pf5Tx(s, "r@relay.example", "r@other.example", "r@rej.example"))
	}
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		dlg = append(dlg, pf5Session(from, "client.example", txs...))
	}
	// warn_if_reject reject_unauth_destination as the only guard against
	// relaying is refused at start (docs/policy.md).
	for _, relay := range []bool{false, true} {
		pfRelay, rkRelay := "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination", `relay_restrictions = ["permit_mynetworks", "reject_unauth_destination"]`
		if relay {
			pfRelay, rkRelay = "smtpd_relay_restrictions = permit_mynetworks, warn_if_reject reject_unauth_destination, check_recipient_access hash:DIR/access, reject_unauth_destination",
				`relay_restrictions = ["permit_mynetworks", "warn_if_reject", "reject_unauth_destination", "check_recipient_access hash:DIR/access", "reject_unauth_destination"]`
		}
		pf5Run(t, pf5Scenario{
			name:  "warn_if_reject",
			files: map[string]string{"hash:DIR/access": table},
			mainCF: append(tab18BaseCF, pfRelay,
				"smtpd_sender_restrictions = warn_if_reject check_sender_access hash:DIR/access, check_sender_access hash:DIR/access"),
			toml: "[policy]\n" + tab18Base + rkRelay + `
sender_restrictions = ["warn_if_reject", "check_sender_access hash:DIR/access", "check_sender_access hash:DIR/access"]
`,
			dialogues: dlg,
		})
	}
}

// TestTab18PatternSyntax: continuation lines, comments and odd spacing
// in regexp:, pcre: and cidr: files.
func TestTab18PatternSyntax(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"DIR/sender.re": "# comment\n/^a@/ REJECT first\n  continued\n\n  # indented comment\n/^b@/\tREJECT tab # not a comment\n" +
			"if /@c\\.example$/\n/^c@/ REJECT in if\nendif\n/^d@/ 550   5.7.1   spaced   out\n/^e@/ REJECT\n/^f@/ OK\n",
		"DIR/client.cidr": "127.0.0.2 REJECT two # not a comment\n  continued\n127.0.0.3/32\tREJECT\ttabbed\n # comment\n127.0.0.4 550 5.7.1\n",
	}
	var txs [][]string
	for _, s := range []string{"a@x.example", "b@x.example", "c@c.example", "c@x.example", "d@x.example", "e@x.example", "f@x.example"} {
		txs = append(txs, pf5Tx(s, strings.ReplaceAll(strings.ReplaceAll(s, "@", "-"), ".", "-")+"@relay.example"))
	}
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.5"} {
		dlg = append(dlg, pf5Session(from, "client.example", pf5Tx("s@example.org", "r@relay.example")))
	}
	for _, typ := range []string{"regexp", "pcre"} {
		t.Run(typ, func(t *testing.T) {
			pf5Run(t, pf5Scenario{
				name:  "pattern syntax " + typ,
				files: files,
				mainCF: append(tab18BaseCF, "smtpd_client_restrictions = check_client_access cidr:DIR/client.cidr",
					"smtpd_sender_restrictions = check_sender_access "+typ+":DIR/sender.re"),
				toml: "[policy]\n" + tab18Base + `client_restrictions = ["check_client_access cidr:DIR/client.cidr"]
sender_restrictions = ["check_sender_access ` + typ + `:DIR/sender.re"]
`,
				dialogues: append(dlg, pf5Session("127.0.0.6", "client.example", txs...)),
			})
		})
	}
}

// TestTab18DataRecipient: check_recipient_access and check_client_access
// in smtpd_data_restrictions, with one recipient and with two.
func TestTab18DataRecipient(t *testing.T) {
	t.Parallel()
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		dlg = append(dlg,
			pf5Dialogue{from: from, cmds: []string{"EHLO client.example", "MAIL FROM:<s@example.org>", "RCPT TO:<bad@relay.example>", "DATA", "RSET",
				"MAIL FROM:<s@example.org>", "RCPT TO:<bad@relay.example>", "RCPT TO:<good@relay.example>", "DATA", "RSET",
				"MAIL FROM:<s@example.org>", "RCPT TO:<dip@relay.example>", "DATA", "QUIT"}},
			// The first BDAT is checked as DATA is.
			pf5Dialogue{from: from, cmds: []string{"EHLO client.example", "MAIL FROM:<s@example.org>", "RCPT TO:<bad@relay.example>", "BDAT 0 LAST", "RSET",
				"MAIL FROM:<s@example.org>", "RCPT TO:<good@relay.example>", "BDAT 0 LAST", "QUIT"}})
	}
	pf5Run(t, pf5Scenario{
		name:  "data recipient",
		files: map[string]string{"hash:DIR/access": "bad@relay.example REJECT bad rcpt\ndip@relay.example DEFER_IF_PERMIT dip rcpt\n127.0.0.2 DEFER_IF_REJECT client dir\n"},
		mainCF: append(tab18BaseCF,
			"smtpd_data_restrictions = check_client_access hash:DIR/access, check_recipient_access hash:DIR/access"),
		toml: "[policy]\n" + tab18Base + `data_restrictions = ["check_client_access hash:DIR/access", "check_recipient_access hash:DIR/access"]
`,
		dialogues: dlg,
	})
}

// TestTab18SecondHelo: a second EHLO or HELO in a session replaces the
// name the HELO restrictions look at, and a transaction's DISCARD does
// not outlive RSET.
func TestTab18SecondHelo(t *testing.T) {
	t.Parallel()
	cmds := []string{"EHLO good.example", "MAIL FROM:<s@example.org>", "RCPT TO:<r@relay.example>", "RSET",
		"EHLO bad.example", "MAIL FROM:<s@example.org>", "RCPT TO:<r@relay.example>", "RSET",
		"HELO good.example", "MAIL FROM:<s@disc.example>", "RCPT TO:<r@relay.example>", "RSET",
		"MAIL FROM:<s@example.org>", "RCPT TO:<r@rej.example>", "QUIT"}
	pf5Run(t, pf5Scenario{
		name:  "second helo",
		files: map[string]string{"hash:DIR/access": "bad.example REJECT bad helo\ndisc.example DISCARD\nrej.example REJECT rej\n"},
		mainCF: append(tab18BaseCF, "smtpd_helo_restrictions = check_helo_access hash:DIR/access",
			"smtpd_sender_restrictions = check_sender_access hash:DIR/access", "smtpd_recipient_restrictions = check_recipient_access hash:DIR/access"),
		toml: "[policy]\n" + tab18Base + `helo_restrictions = ["check_helo_access hash:DIR/access"]
sender_restrictions = ["check_sender_access hash:DIR/access"]
recipient_restrictions = ["check_recipient_access hash:DIR/access"]
`,
		dialogues: []pf5Dialogue{{from: "127.0.0.2", cmds: cmds}, {from: "127.0.0.1", cmds: cmds}},
	})
}
