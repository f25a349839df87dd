package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Differential tests of the Postfix-style relay policy: the same tables,
// the same restriction lists and the same SMTP dialogues are given to a
// private Postfix and to relaykeeper, and their replies are compared
// command by command (code, enhanced code and text). A Postfix
// administrator who moves main.cf and its tables to relaykeeper expects
// the same answers.

// pf5Scenario is one configuration given to both servers.
type pf5Scenario struct {
	name string
	// files are table files, written to a directory that both servers
	// read; "DIR" in a file name, in mainCF and in toml is that
	// directory. A file whose name starts with "hash:" (or "btree:") is
	// written without the prefix and postmap'ed with it for Postfix.
	files map[string]string
	// mainCF lines for Postfix (over the harness's own: mynetworks is
	// 127.0.0.0/8 and smtpd_relay_restrictions permit_mynetworks,
	// reject_unauth_destination unless set here).
	mainCF []string
	// toml is relaykeeper's configuration file.
	toml string
	// dialogues are run against both.
	dialogues []pf5Dialogue
	// intended are relaykeeper's replies, by command, where it differs
	// from Postfix by design (and says so in docs/).
	intended map[string]string
}

// pf5Dialogue is one SMTP session from a client address.
type pf5Dialogue struct {
	from string // a 127.0.0.0/8 address
	cmds []string
	// intended are relaykeeper's replies by design in this dialogue, over
	// the scenario's.
	intended map[string]string
}

// pf5Server is one side of the comparison.
type pf5Server struct {
	name, addr string
}

// pf5Run sets both servers up for sc and compares every reply of every
// dialogue; the greeting and the lines of an EHLO reply after its first
// are not compared (banners and extensions differ by design), nor the
// text of a 250 after the message (queue ids differ).
func pf5Run(t *testing.T, sc pf5Scenario) {
	t.Helper()
	if _, err := exec.LookPath("postmap"); err != nil {
		harness.Missing(t, "postmap is not installed")
	}
	dir, err := os.MkdirTemp("", "pf5-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	subst := func(s string) string { return strings.ReplaceAll(s, "DIR", dir) }
	var hashed []string
	for name, content := range sc.files {
		name = subst(name)
		for _, typ := range []string{"hash:", "btree:"} {
			if rest, ok := strings.CutPrefix(name, typ); ok {
				name = rest
				hashed = append(hashed, typ+rest)
			}
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pf := harness.StartPostfix(t, harness.PostfixOptions{
		Hostname: "relay.test",
		MainCF: append([]string{"smtpd_peername_lookup = no",
			"smtpd_soft_error_limit = 100", "smtpd_hard_error_limit = 100", "smtpd_error_sleep_time = 0"}, pf5Subst(sc.mainCF, subst)...),
	})
	for _, f := range hashed {
		if out, err := exec.Command("postmap", "-c", pf.ConfigDir(), f).CombinedOutput(); err != nil {
			t.Fatalf("postmap %s: %v\n%s", f, err, out)
		}
	}
	if len(hashed) > 0 {
		// smtpd opens its tables when it starts; the first session may
		// have started before postmap ran.
		pfReload(t, pf)
	}
	// Many refusals in one session: neither server may hang up or slow
	// down for them.
	cfg := strings.Replace(subst(sc.toml), "[policy]\n", "[policy]\nhard_error_limit = 100\n", 1)
	// Written as it is: top-level keys (recipient_delimiter) come first.
	cfgFile := filepath.Join(t.TempDir(), "relaykeeper.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--domain", "relay.test",
		"--spool-dir", t.TempDir(), "--config", cfgFile)
	servers := []pf5Server{{"postfix", pf.Addr()}, {"relaykeeper", r.addr()}}
	for i, d := range sc.dialogues {
		// The checks of unknown domains ask the sandbox's resolver, whose
		// answer a loaded machine can miss (a temporary failure, which
		// the restrictions then pass over): a dialogue that differs is
		// spoken once more, and only a difference found twice counts.
		var bad []string
		for range 2 {
			bad = pf5Compare(t, sc, i, d, servers)
			if len(bad) == 0 {
				break
			}
		}
		for _, b := range bad {
			t.Error(b)
		}
	}
	if t.Failed() {
		t.Logf("relaykeeper log:\n%s", r.stderr())
	}
}

// pf5Compare speaks dialogue d to each server and returns what differs
// from Postfix, or from the reply intended by design.
func pf5Compare(t *testing.T, sc pf5Scenario, i int, d pf5Dialogue, servers []pf5Server) []string {
	got := make([][]string, len(servers))
	for s, srv := range servers {
		got[s] = pf5Dialog(t, srv, d)
	}
	var bad []string
	for k, cmd := range d.cmds {
		p, rk := got[0][k], got[1][k]
		if os.Getenv("PF5_VERBOSE") != "" {
			t.Logf("%s %s: %s\n  postfix:     %s\n  relaykeeper: %s", sc.name, d.from, cmd, p, rk)
		}
		want, ok := d.intended[cmd]
		if !ok {
			want, ok = sc.intended[cmd]
		}
		if ok {
			if rk != want {
				bad = append(bad, fmt.Sprintf("%s, dialogue %d from %s: %s\n  relaykeeper: %s\n  want:        %s (by design; postfix: %s)", sc.name, i, d.from, cmd, rk, want, p))
			}
			continue
		}
		if !pf5Same(cmd, p, rk) {
			bad = append(bad, fmt.Sprintf("%s, dialogue %d from %s: %s\n  postfix:     %s\n  relaykeeper: %s", sc.name, i, d.from, cmd, p, rk))
		}
	}
	return bad
}

func pf5Subst(lines []string, subst func(string) string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = subst(l)
	}
	return out
}

// pfReload makes the instance's smtpd processes start afresh.
func pfReload(t *testing.T, pf *harness.Postfix) {
	t.Helper()
	if out, err := exec.Command("postfix", "-c", pf.ConfigDir(), "reload").CombinedOutput(); err != nil {
		t.Fatalf("postfix reload: %v\n%s", err, out)
	}
}

// pf5Dialog runs d against srv and returns the first line of each reply
// (the whole reply joined for multi-line ones), "(closed)" once the server
// has hung up.
func pf5Dialog(t *testing.T, srv pf5Server, d pf5Dialogue) []string {
	t.Helper()
	c, greet, err := dialFrom(srv.addr, d.from)
	if err != nil {
		t.Fatalf("%s: connect from %s: %v (%q)", srv.name, d.from, err, greet)
	}
	defer c.Close()
	out := make([]string, len(d.cmds))
	closed := false
	for i, cmd := range d.cmds {
		if closed {
			out[i] = "(closed)"
			continue
		}
		var rep reply
		if body, ok := strings.CutPrefix(cmd, "BODY "); ok {
			// The message after a 354: lines separated by "|".
			text := strings.ReplaceAll(body, "|", "\r\n") + "\r\n."
			rep, err = c.cmd("%s", text)
		} else {
			rep, err = c.cmd("%s", cmd)
		}
		if err != nil {
			out[i] = "(closed)"
			closed = true
			continue
		}
		out[i] = rep.String()
		if rep.code() == 354 && (i+1 == len(d.cmds) || !strings.HasPrefix(d.cmds[i+1], "BODY ")) {
			// A go-ahead the dialogue did not expect (it meant DATA to
			// be refused): an empty message, so that the next command
			// is read as one instead of as text, which would leave
			// both servers silent until the client's timeout.
			if rep, err = c.cmd("."); err != nil {
				closed = true
			}
			out[i] = fmt.Sprintf("354>%d", rep.code())
		}
	}
	return out
}

// pf5Same compares two replies to cmd.
func pf5Same(cmd, p, rk string) bool {
	up := strings.ToUpper(cmd)
	switch {
	case strings.HasPrefix(p, "354 ") && strings.HasPrefix(rk, "354 "):
		// Go-ahead texts differ; a client reads only the code.
		return true
	case strings.HasPrefix(up, "EHLO"):
		// Extensions differ; the first line names the server.
		return p[:3] == rk[:3]
	case strings.HasPrefix(up, "BODY "), strings.HasPrefix(up, "QUIT"), up == "RSET",
		strings.HasPrefix(rk, "250 ") && strings.HasPrefix(up, "BDAT "):
		// Postfix's "250 2.0.0 Ok" to RSET is relaykeeper's "Session
		// reset"; the rest name the server or the queue id (as an
		// accepted last BDAT does).
		return p[:3] == rk[:3]
	}
	return p == rk
}

// pf5Session is one session from client address from, saying EHLO helo,
// with one transaction for each {sender, recipient...} in txs, each ended
// by RSET.
func pf5Session(from, helo string, txs ...[]string) pf5Dialogue {
	cmds := []string{"EHLO " + helo}
	for _, tx := range txs {
		cmds = append(cmds, "MAIL FROM:<"+tx[0]+">")
		for _, r := range tx[1:] {
			cmds = append(cmds, "RCPT TO:<"+r+">")
		}
		cmds = append(cmds, "RSET")
	}
	return pf5Dialogue{from: from, cmds: append(cmds, "QUIT")}
}

// pf5Tx is a transaction for pf5Session.
func pf5Tx(sender string, rcpts ...string) []string { return append([]string{sender}, rcpts...) }

// TestRevPF5Relay: permit_mynetworks and reject_unauth_destination with
// relay_domains, from inside and outside mynetworks, with the classic
// open-relay probes.
func TestRevPF5Relay(t *testing.T) {
	t.Parallel()
	rcpts := []string{"a@relay.example", "a@sub.relay.example", "a@other.example", "a%b@relay.example",
		"b!a@relay.example", "a@[192.0.2.1]", "@relay.example:a@other.example", "postmaster", "a@RELAY.EXAMPLE.",
		"\"a@other\"@relay.example", "a@relay.example.other"}
	outside := pf5Session("127.0.0.2", "client.example", pf5Tx("s@example.org", rcpts...))
	// docs/tables.md: a refusal names a quoted local part with its quotes.
	outside.intended = map[string]string{`RCPT TO:<"a@other"@relay.example>`: `554 5.7.1 <"a@other"@relay.example>: Relay access denied`}
	pf5Run(t, pf5Scenario{
		name: "relay",
		mainCF: []string{
			"mynetworks = 127.0.0.1/32",
			"relay_domains = relay.example",
		},
		toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
`,
		dialogues: []pf5Dialogue{outside, pf5Session("127.0.0.1", "client.example", pf5Tx("s@example.org", rcpts...))},
	})
}

// pf5Actions is an access table with every kind of result, keyed by the
// sender or recipient domain.
const pf5Actions = `ok.example OK
num.example 200
reject.example REJECT
rejtext.example REJECT go away
rejenh.example REJECT 5.7.0 with its own code
rejenh4.example REJECT 4.7.0 temporary enhanced code
defer.example DEFER
defertext.example DEFER come back later
c550.example 550 custom five fifty
c550enh.example 550 5.1.8 custom enhanced
c451.example 451 custom four fifty one
c451enh.example 451 5.7.1 class mismatch
c421.example 421 closing now
dunno.example DUNNO
hold.example HOLD
holdtext.example HOLD kept for review
discard.example DISCARD
warn.example WARN watch this
info.example INFO noted
prepend.example PREPEND X-Pf5: yes
redirect.example REDIRECT x@redirect.target
bcc.example BCC x@bcc.target
filter.example FILTER smtp:[127.0.0.1]:10025
dip.example DEFER_IF_PERMIT dip text
dir.example DEFER_IF_REJECT dir text
lower.example reject lower case
permitrej.example permit_mynetworks, reject
class.example pf5_class
`

// pf5ActionDomains are the domains of pf5Actions.
func pf5ActionDomains() []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(pf5Actions), "\n") {
		out = append(out, strings.Fields(line)[0])
	}
	return out
}

// TestRevPF5SenderActions: check_sender_access with every result, in each
// table format.
func TestRevPF5SenderActions(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"hash", "texthash"} {
		t.Run(typ, func(t *testing.T) {
			var txs [][]string
			for _, d := range pf5ActionDomains() {
				if d == "c421.example" {
					continue
				}
				txs = append(txs, pf5Tx("s@"+d, "r@relay.example", "r@other.example"))
			}
			var dlg []pf5Dialogue
			for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
				dlg = append(dlg, pf5Session(from, "client.example", txs...))
				// After a DISCARD nothing more is checked for the transaction.
				dlg = append(dlg, pf5Session(from, "client.example", pf5Tx("s@c421.example", "r@relay.example")))
			}
			pf5Run(t, pf5Scenario{
				name:  typ,
				files: map[string]string{"hash:DIR/sender_access": pf5Actions},
				mainCF: []string{
					"mynetworks = 127.0.0.1/32",
					"relay_domains = relay.example",
					"smtpd_restriction_classes = pf5_class",
					"pf5_class = reject_unauth_destination, permit",
					"smtpd_sender_restrictions = check_sender_access " + typ + ":DIR/sender_access",
				},
				toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
sender_restrictions = ["check_sender_access ` + typ + `:DIR/sender_access"]
[policy.restriction_classes]
pf5_class = ["reject_unauth_destination", "permit"]
`,
				dialogues: dlg,
			})
		})
	}
}

// TestRevPF5LookupOrder: the keys an address is looked up by (full
// address, domain, parent domains, user@, with and without an extension),
// for senders and recipients, in hash and texthash tables.
func TestRevPF5LookupOrder(t *testing.T) {
	t.Parallel()
	table := `full@lookup.example REJECT full address
lookup.example REJECT domain
sub.parent.example DUNNO
parent.example REJECT parent
.dotted.example REJECT dotted parent
user@ REJECT user at
ext+tag@lookup2.example REJECT extended full
ext@lookup2.example REJECT unextended full
ext+@ REJECT extended user at
ext@ REJECT unextended user at
lookup2.example DUNNO
<> REJECT null sender
CaSe@Upper.EXAMPLE REJECT case
quoted\@x@lookup3.example REJECT quoted
"sp ace"@lookup3.example REJECT spaced
`
	addrs := []string{"full@lookup.example", "other@lookup.example", "a@sub.lookup.example", "a@x.sub.parent.example",
		"a@sub.parent.example", "a@parent.example", "a@x.parent.example", "a@dotted.example", "a@x.dotted.example",
		"user@nowhere.example", "user+tag@nowhere.example", "ext+tag@lookup2.example", "ext+other@lookup2.example",
		"ext@lookup2.example", "ext+tag@nowhere.example", "ext-tag@lookup2.example", "case@upper.example",
		"\"sp ace\"@lookup3.example", "full@LOOKUP.example", "full@lookup.example.",
		"a@lookup2.example", "a+b+c@lookup2.example", "ext++tag@lookup2.example"}
	for _, delim := range []string{"", "+", "+-"} {
		t.Run("delim="+delim, func(t *testing.T) {
			var stx, rtx [][]string
			for _, a := range addrs {
				if !strings.Contains(a, "dotted") && !strings.Contains(a, "sp ace") {
					// As senders the differences below would show at
					// a RCPT command that is not theirs alone.
					stx = append(stx, pf5Tx(a, "r@relay.example"))
				}
				rtx = append(rtx, pf5Tx("s@example.org", a))
			}
			stx = append(stx, pf5Tx("", "r@relay.example"))
			toml := `recipient_delimiter = "` + delim + `"
[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
sender_restrictions = ["check_sender_access hash:DIR/access"]
recipient_restrictions = ["check_recipient_access texthash:DIR/access"]
`
			pf5Run(t, pf5Scenario{
				name:  "lookup order, delimiter " + delim,
				files: map[string]string{"hash:DIR/access": table},
				mainCF: []string{
					"mynetworks = 127.0.0.1/32",
					"relay_domains = relay.example",
					"recipient_delimiter = " + delim,
					"smtpd_sender_restrictions = check_sender_access hash:DIR/access",
					"smtpd_recipient_restrictions = check_recipient_access texthash:DIR/access",
				},
				toml:      toml,
				dialogues: []pf5Dialogue{pf5Session("127.0.0.1", "client.example", append(stx, rtx...)...)},
				intended: map[string]string{
					// docs/tables.md: a ".domain" key matches subdomains
					// too (Postfix, by default, reads it only without
					// parent_domain_matches_subdomains).
					"RCPT TO:<a@x.dotted.example>": "554 5.7.1 <a@x.dotted.example>: Recipient address rejected: dotted parent",
					// docs/tables.md: the reply names a quoted local part
					// with its quotes, as the client sent it.
					`RCPT TO:<"sp ace"@lookup3.example>`: `554 5.7.1 <"sp ace"@lookup3.example>: Recipient address rejected: spaced`,
				},
			})
		})
	}
}

// TestRevPF5AddressSyntax: MAIL and RCPT with the address forms clients
// send, well formed or not, with no restriction that looks at them.
func TestRevPF5AddressSyntax(t *testing.T) {
	t.Parallel()
	forms := []string{"FROM:<user>", "FROM:<user@>", "FROM:<@relay.example>", "FROM:<a@b@relay.example>",
		"FROM:s@example.org", "FROM: <s@example.org>", "FROM:<s@example.org> ", "FROM:<<s@example.org>>",
		"FROM:<s@example.org", "FROM:<>", "FROM:<s@[192.0.2.1]>", "FROM:<s@[IPv6:2001:db8::1]>", "FROM:<s@[300.1.1.1]>",
		"FROM:<s@exa mple.org>", "FROM:<\"a b\"@example.org>", "FROM:<s@-bad-.example>", "FROM:<s@example..org>",
		"FROM:<.s@example.org>", "FROM:<s.@example.org>", "FROM:<s..t@example.org>", "FROM:<@a,@b:s@example.org>",
		"FROM:<s@example.org.>", "FROM:<s@localhost>", "FROM:<s%t@example.org>"}
	var cmds []string
	cmds = append(cmds, "EHLO client.example")
	for _, f := range forms {
		cmds = append(cmds, "MAIL "+f, "RSET")
	}
	cmds = append(cmds, "MAIL FROM:<s@example.org>")
	for _, f := range forms {
		cmds = append(cmds, "RCPT TO:"+strings.TrimPrefix(f, "FROM:"))
	}
	cmds = append(cmds, "QUIT")
	pf5Run(t, pf5Scenario{
		name:      "address syntax",
		mainCF:    []string{"mynetworks = 127.0.0.1/32"},
		toml:      "[policy]\nmynetworks = [\"127.0.0.1/32\"]\n",
		dialogues: []pf5Dialogue{{from: "127.0.0.1", cmds: cmds}},
		// docs/limits.md: no address without a domain (Postfix appends
		// @$myorigin), no empty local part, no two @ and no nested
		// brackets (Postfix strips them).
		intended: map[string]string{
			"MAIL FROM:<user>":              "504 5.5.2 <user>: Sender address rejected: need fully-qualified address",
			"RCPT TO:<user>":                "504 5.5.2 <user>: Recipient address rejected: need fully-qualified address",
			"MAIL FROM:<@relay.example>":    "501 5.1.7 Bad sender address syntax",
			"RCPT TO:<@relay.example>":      "501 5.1.3 Bad recipient address syntax",
			"MAIL FROM:<a@b@relay.example>": "501 5.1.7 Bad sender address syntax",
			"RCPT TO:<a@b@relay.example>":   "501 5.1.3 Bad recipient address syntax",
			"MAIL FROM:<<s@example.org>>":   "501 5.1.7 Bad sender address syntax",
			"RCPT TO:<<s@example.org>>":     "501 5.1.3 Bad recipient address syntax",
		},
	})
}

// TestRevPF5ClientAccess: check_client_access by IP address (and its
// shorter forms), in hash, cidr, regexp and pcre tables, with clients at
// several loopback addresses.
func TestRevPF5ClientAccess(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"hash:DIR/client": `127.0.0.2 REJECT exact address
127.0.0.3 DUNNO
127.0.0 550 5.7.1 three octets
127 DEFER one octet
`,
		"DIR/client.cidr": `127.0.0.2/32 REJECT cidr exact
!127.0.0.0/30 DUNNO
127.0.0.4/30 OK
127.0.0.0/24 451 4.7.1 cidr net
127.0.0.0/8 REJECT
`,
		"DIR/client.regexp": `/^(127)\.0\.0\.2$/ REJECT regexp $1 matched
/^127\.0\.0\.(1[0-9])$/ 550 last octet $1
/^127\.0\.0\.3$/ DUNNO
/^127\./ pf5_class
`,
		"DIR/client.pcre": `/^127\.0\.0\.2$/ REJECT pcre matched
/^127\.0\.0\.(1\d)$/ 550 pcre ${1}
!/^127\.0\.0\.[0-9]$/ DUNNO
/\.5$/ DEFER_IF_PERMIT five
/\.6$/ HOLD
`,
		// A client without a name is looked up as "unknown" first.
		"DIR/unknown.regexp": "/^unknown$/ REJECT nameless\n",
		"DIR/unknown":        "unknown 550 5.7.1 nameless\n",
	}
	clients := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.6", "127.0.0.12", "127.0.1.1"}
	for _, spec := range []string{"hash:DIR/client", "cidr:DIR/client.cidr", "regexp:DIR/client.regexp", "pcre:DIR/client.pcre",
		"regexp:DIR/unknown.regexp", "texthash:DIR/unknown"} {
		t.Run(strings.ReplaceAll(spec, "DIR/", ""), func(t *testing.T) {
			var dlg []pf5Dialogue
			for _, c := range clients {
				dlg = append(dlg, pf5Session(c, "client.example", pf5Tx("s@example.org", "r@relay.example", "r@other.example")))
			}
			pf5Run(t, pf5Scenario{
				name:  spec,
				files: files,
				mainCF: []string{
					"mynetworks = 127.0.0.1/32",
					"relay_domains = relay.example",
					"smtpd_restriction_classes = pf5_class",
					"pf5_class = permit_mynetworks, reject_unauth_destination",
					"smtpd_client_restrictions = check_client_access " + spec,
				},
				toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
client_restrictions = ["check_client_access ` + spec + `"]
[policy.restriction_classes]
pf5_class = ["permit_mynetworks", "reject_unauth_destination"]
`,
				dialogues: dlg,
			})
		})
	}
}

// TestRevPF5Helo: the HELO name checks and check_helo_access, with the
// names clients really send, and a session without HELO.
func TestRevPF5Helo(t *testing.T) {
	t.Parallel()
	helos := []string{"client.example", "localhost", "localhost.", "[127.0.0.1]", "[IPv6:::1]", "127.0.0.1", "under_score.example",
		"-bad.example", "bad-.example", "a..b.example", "UPPER.Example", "sub.helo.example", "helo.example", "x.y.z", "1.2.3.4.example", "toolong" + strings.Repeat("x", 60) + ".example",
		"_dmarc.example", "1.2.3.4", "a.example..", "host_1"}
	var dlg []pf5Dialogue
	for _, h := range helos {
		for _, verb := range []string{"EHLO", "HELO"} {
			dlg = append(dlg, pf5Dialogue{from: "127.0.0.2", cmds: []string{verb + " " + h, "MAIL FROM:<s@example.org>", "RCPT TO:<r@relay.example>", "QUIT"},
				intended: pf5HeloIntended(verb, h)})
		}
	}
	// docs/postfix-migration.md: MAIL needs HELO or EHLO first, as with
	// smtpd_helo_required = yes.
	dlg = append(dlg, pf5Dialogue{from: "127.0.0.2", cmds: []string{"MAIL FROM:<s@example.org>", "RCPT TO:<r@relay.example>", "QUIT"},
		intended: map[string]string{"MAIL FROM:<s@example.org>": "503 5.5.1 Error: send HELO/EHLO first", "RCPT TO:<r@relay.example>": "503 5.5.1 Error: need MAIL command"}})
	pf5Run(t, pf5Scenario{
		name: "helo",
		files: map[string]string{"hash:DIR/helo": `helo.example REJECT helo table
localhost REJECT you are not me
[127.0.0.1] 550 literal
127.0.0.1 REJECT bare address
`},
		mainCF: []string{
			"mynetworks = 127.0.0.1/32",
			"relay_domains = relay.example",
			"smtpd_helo_restrictions = reject_invalid_helo_hostname, check_helo_access hash:DIR/helo, reject_non_fqdn_helo_hostname",
		},
		toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
helo_restrictions = ["reject_invalid_helo_hostname", "check_helo_access hash:DIR/helo", "reject_non_fqdn_helo_hostname"]
`,
		dialogues: dlg,
	})
}

// pf5HeloIntended are relaykeeper's documented differences from Postfix
// after "VERB helo" in TestRevPF5Helo.
func pf5HeloIntended(verb, helo string) map[string]string {
	switch helo {
	case "localhost.":
		// docs/tables.md: a HELO name's trailing dot is dropped before
		// it is looked up (Postfix looks "localhost." up as it is).
		return map[string]string{"RCPT TO:<r@relay.example>": "554 5.7.1 <localhost.>: Helo command rejected: you are not me"}
	case "-bad.example", "bad-.example", "a..b.example", "a.example..", "toolong" + strings.Repeat("x", 60) + ".example":
		// docs/limits.md: an EHLO or HELO argument that is no domain
		// name is refused at once (Postfix takes it, and only
		// reject_invalid_helo_hostname refuses it, at RCPT).
		return map[string]string{
			verb + " " + helo:           "501 5.5.2 Error: " + verb + " argument is neither a domain nor an address literal",
			"MAIL FROM:<s@example.org>": "503 5.5.1 Error: send HELO/EHLO first",
			"RCPT TO:<r@relay.example>": "503 5.5.1 Error: need MAIL command",
		}
	}
	return nil
}

// TestRevPF5Checks: reject_non_fqdn_*, reject_unknown_*_domain (the
// sandbox's DNS answers NXDOMAIN), warn_if_reject, DEFER_IF_PERMIT and
// DEFER_IF_REJECT across stages, and permit in an early list.
func TestRevPF5Checks(t *testing.T) {
	t.Parallel()
	table := `dip.example DEFER_IF_PERMIT dip
dir.example DEFER_IF_REJECT dir
okay.example OK
`
	txs := [][]string{
		pf5Tx("s@host", "r@relay.example", "r@host", "r@relay"),
		pf5Tx("s@nxdomain.invalid", "r@relay.example", "r@nxdomain.invalid"),
		pf5Tx("s@dip.example", "r@relay.example", "r@other.example", "r@dir.example"),
		pf5Tx("s@dir.example", "r@relay.example", "r@other.example", "r@nxdomain.invalid"),
		pf5Tx("s@okay.example", "r@relay.example", "r@other.example", "r@nxdomain.invalid"),
		pf5Tx("", "r@relay.example", "r@host", "r@nxdomain.invalid"),
		pf5Tx("s@[192.0.2.1]", "r@[192.0.2.1]"),
	}
	pf5Run(t, pf5Scenario{
		name:  "checks",
		files: map[string]string{"hash:DIR/access": table},
		mainCF: []string{
			"mynetworks = 127.0.0.1/32",
			"relay_domains = relay.example, relay, nxdomain.invalid",
			"smtpd_sender_restrictions = reject_non_fqdn_sender, check_sender_access hash:DIR/access, warn_if_reject reject_unknown_sender_domain",
			"smtpd_recipient_restrictions = reject_non_fqdn_recipient, check_recipient_access hash:DIR/access, reject_unknown_recipient_domain",
		},
		toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example", "relay", "nxdomain.invalid"]
sender_restrictions = ["reject_non_fqdn_sender", "check_sender_access hash:DIR/access", "warn_if_reject", "reject_unknown_sender_domain"]
recipient_restrictions = ["reject_non_fqdn_recipient", "check_recipient_access hash:DIR/access", "reject_unknown_recipient_domain"]
`,
		dialogues: []pf5Dialogue{
			pf5Session("127.0.0.1", "client.example", txs...),
			pf5Session("127.0.0.2", "client.example", txs...),
		},
	})
}

// TestRevPF5MyNetworks: mynetworks as a list, a file and a cidr: table,
// with relay_domains as a file and a table, and smtpd_data_restrictions.
func TestRevPF5MyNetworks(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"DIR/networks":      "# trusted\n127.0.0.3\n127.0.1.0/24 # a net\n[::1]/128\n",
		"DIR/networks.cidr": "127.0.0.3 OK\n127.0.1.0/24 anything\n",
		"DIR/relay_domains": "relay.example\nrelay2.example other.example\n",
		"hash:DIR/relay_db": "relay.example OK\nrelay2.example x\nother.example x\n",
	}
	txs := [][]string{
		pf5Tx("s@example.org", "r@relay.example", "r@relay2.example", "r@sub.relay.example", "r@elsewhere.example"),
		pf5Tx("", "r@relay.example", "r@other.example"),
	}
	var dlg []pf5Dialogue
	for _, from := range []string{"127.0.0.1", "127.0.0.3", "127.0.1.9", "127.0.2.1"} {
		dlg = append(dlg, pf5Session(from, "client.example", txs...))
		dlg = append(dlg, pf5Dialogue{from: from, cmds: []string{"EHLO client.example", "MAIL FROM:<>", "RCPT TO:<r@relay.example>",
			"RCPT TO:<r@other.example>", "DATA", "RSET", "MAIL FROM:<s@example.org>", "RCPT TO:<r@relay.example>", "DATA", "BODY Subject: x||x", "QUIT"}})
	}
	for _, form := range [][2]string{{"DIR/networks", "DIR/relay_domains"}, {"cidr:DIR/networks.cidr", "hash:DIR/relay_db"},
		{"!127.0.0.3 !127.0.1.9 127.0.0.0/8 127.0.1.0/24", "relay.example"}} {
		t.Run(strings.Split(form[0], ":")[0], func(t *testing.T) {
			nets := strings.Join(strings.Fields(form[0]), `", "`)
			pf5Run(t, pf5Scenario{
				name:  form[0],
				files: files,
				mainCF: []string{
					"mynetworks = " + form[0],
					"relay_domains = " + form[1],
					"smtpd_data_restrictions = reject_multi_recipient_bounce, reject_unauth_pipelining",
				},
				toml: `[policy]
mynetworks = ["` + nets + `"]
relay_domains = ["` + form[1] + `"]
data_restrictions = ["reject_multi_recipient_bounce", "reject_unauth_pipelining"]
`,
				dialogues: dlg,
			})
		})
	}
}

// TestRevPF5Lists: plain reject, defer and dunno at the end of each list
// (the reply names what the list checks), permit_auth_destination,
// defer_unauth_destination and relay_recipient_maps.
func TestRevPF5Lists(t *testing.T) {
	t.Parallel()
	files := map[string]string{"hash:DIR/recipients": "known@relay.example x\n@relay2.example x\n"}
	txs := [][]string{
		pf5Tx("s@example.org", "known@relay.example", "KNOWN@Relay.Example", "unknown@relay.example", "any@relay2.example", "a@other.example", "known+ext@relay.example"),
		pf5Tx("", "known@relay.example", "a@other.example"),
	}
	lists := []struct{ name, pf, rk string }{
		{"client reject", "smtpd_client_restrictions = permit_mynetworks, reject", `client_restrictions = ["permit_mynetworks", "reject"]`},
		{"helo defer", "smtpd_helo_restrictions = permit_mynetworks, defer", `helo_restrictions = ["permit_mynetworks", "defer"]`},
		{"sender reject", "smtpd_sender_restrictions = permit_mynetworks, reject", `sender_restrictions = ["permit_mynetworks", "reject"]`},
		{"recipient", "smtpd_recipient_restrictions = permit_auth_destination, defer", `recipient_restrictions = ["permit_auth_destination", "defer"]`},
	}
	for _, l := range lists {
		t.Run(l.name, func(t *testing.T) {
			pf5Run(t, pf5Scenario{
				name:  l.name,
				files: files,
				mainCF: []string{
					"mynetworks = 127.0.0.1/32",
					"relay_domains = relay.example, relay2.example",
					"relay_recipient_maps = hash:DIR/recipients",
					"recipient_delimiter = +",
					"smtpd_relay_restrictions = permit_mynetworks, defer_unauth_destination",
					l.pf,
				},
				toml: `recipient_delimiter = "+"
[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example", "relay2.example"]
relay_recipient_maps = ["hash:DIR/recipients"]
relay_restrictions = ["permit_mynetworks", "defer_unauth_destination"]
` + l.rk + "\n",
				dialogues: []pf5Dialogue{
					pf5Session("127.0.0.1", "client.example", txs...),
					pf5Session("127.0.0.2", "client.example", txs...),
				},
			})
		})
	}
}

// TestRevPF5RegexpSender: regexp: and pcre: sender tables with
// substitutions, negation, if/endif and the flags that turn case
// sensitivity on.
func TestRevPF5RegexpSender(t *testing.T) {
	t.Parallel()
	table := `/^Case@Exact\.example$/i REJECT case sensitive
if /@ifblock\.example$/
!/^allowed@/ REJECT not allowed in block
endif
/^([^@+]+)\+([^@]*)@ext\.example$/ REJECT user ${1} tag $2
/^<>$/ REJECT null
/^$/ REJECT empty
/@(sub\.)?dom\.example$/ 550 5.7.2 matched $1 dollar $$
/^postmaster@/ OK
/./ DUNNO
`
	senders := []string{"Case@Exact.example", "case@exact.example", "x@ifblock.example", "allowed@ifblock.example",
		"bob+tag@ext.example", "Bob+Tag@ext.example", "bob@ext.example", "", "a@dom.example", "a@sub.dom.example", "postmaster@dom.example", "A@DOM.EXAMPLE"}
	for _, typ := range []string{"regexp", "pcre"} {
		t.Run(typ, func(t *testing.T) {
			var txs [][]string
			for _, s := range senders {
				txs = append(txs, pf5Tx(s, "r@relay.example"))
			}
			pf5Run(t, pf5Scenario{
				name:  typ,
				files: map[string]string{"DIR/sender": table},
				mainCF: []string{
					"mynetworks = 127.0.0.1/32",
					"relay_domains = relay.example",
					"smtpd_sender_restrictions = check_sender_access " + typ + ":DIR/sender",
				},
				toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
sender_restrictions = ["check_sender_access ` + typ + `:DIR/sender"]
`,
				dialogues: []pf5Dialogue{pf5Session("127.0.0.2", "client.example", txs...)},
			})
		})
	}
}

// TestRevPF5HeloRegexp: check_helo_access with a regexp table whose rules
// are case-sensitive, substitute, or match parent domains.
func TestRevPF5HeloRegexp(t *testing.T) {
	t.Parallel()
	var dlg []pf5Dialogue
	for _, h := range []string{"Upper.Example", "upper.example", "mail.Sub.example", "[127.0.0.1]", "other.example"} {
		dlg = append(dlg, pf5Session("127.0.0.2", h, pf5Tx("s@example.org", "r@relay.example")))
	}
	pf5Run(t, pf5Scenario{
		name: "helo regexp",
		files: map[string]string{"DIR/helo": `/^Upper\.Example$/i REJECT case sensitive
/^upper\.example$/i REJECT lower sensitive
/^([^.]+)\.sub\.example$/ REJECT host $1
/^\[127\./ 550 literal
`},
		mainCF: []string{
			"mynetworks = 127.0.0.1/32",
			"relay_domains = relay.example",
			"smtpd_helo_restrictions = check_helo_access regexp:DIR/helo",
		},
		toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_domains = ["relay.example"]
helo_restrictions = ["check_helo_access regexp:DIR/helo"]
`,
		dialogues: dlg,
	})
}

// TestRevPF5Commands: the other commands of a session, as a client or a
// monitoring probe sends them.
func TestRevPF5Commands(t *testing.T) {
	t.Parallel()
	cmds := []string{"NOOP", "noop", "NOOP x", "EHLO client.example", "HELP", "EXPN list", "ETRN relay.example", "TURN",
		"VRFY r@relay.example", "VRFY", "RSET x", "DATA", "mail from:<s@example.org> size=100", "rcpt to:<r@relay.example> notify=never",
		"RCPT TO:<r2@relay.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r2@relay.example", "DATA x", "RSET",
		"MAIL FROM:<s@example.org> BODY=8BITMIME", "MAIL FROM:<s@example.org>", "RSET",
		"MAIL FROM:<s@example.org> FOO=bar", "MAIL FROM:<s@example.org> SIZE=999999999", "QUIT"}
	pf5Run(t, pf5Scenario{
		name:      "commands",
		mainCF:    []string{"mynetworks = 127.0.0.1/32", "relay_domains = relay.example"},
		toml:      "[policy]\nmynetworks = [\"127.0.0.1/32\"]\nrelay_domains = [\"relay.example\"]\n",
		dialogues: []pf5Dialogue{{from: "127.0.0.2", cmds: cmds}},
		// By design (docs/limits.md, docs/policy.md): known commands that
		// are not offered are 502, as RFC 5321 has it (Postfix: 500, and
		// it runs ETRN); VRFY never confirms an address; NOOP and the
		// size refusal keep go-smtp's wording, with Postfix's codes.
		intended: map[string]string{
			"NOOP": "250 2.0.0 I have successfully done nothing", "noop": "250 2.0.0 I have successfully done nothing",
			"NOOP x": "250 2.0.0 I have successfully done nothing",
			"HELP":   "502 5.5.1 Error: command not implemented", "EXPN list": "502 5.5.1 Error: command not implemented",
			"ETRN relay.example": "502 5.5.1 Error: command not implemented", "TURN": "502 5.5.1 Error: command not implemented",
			"VRFY r@relay.example":                     "252 2.5.0 Cannot VRFY user, but will accept message",
			"MAIL FROM:<s@example.org> SIZE=999999999": "552 5.3.4 Max message size exceeded",
		},
	})
}

// TestRevPF5RoutedOK: an OK from check_recipient_access ahead of
// reject_unauth_destination does not let a routed recipient (percent
// hack, bang path, quoted @, source route) through.
func TestRevPF5RoutedOK(t *testing.T) {
	t.Parallel()
	rcpts := []string{"a@relay.example", "a%b@relay.example", "b!a@relay.example", "\"a@b\"@relay.example", "@relay.example:a@b.example",
		"a%b@other.example", "x@other.example"}
	outside := pf5Session("127.0.0.2", "client.example", pf5Tx("s@example.org", rcpts...))
	// docs/tables.md: a refusal names a quoted local part with its quotes.
	outside.intended = map[string]string{`RCPT TO:<"a@b"@relay.example>`: `554 5.7.1 <"a@b"@relay.example>: Relay access denied`}
	pf5Run(t, pf5Scenario{
		name:  "routed OK",
		files: map[string]string{"hash:DIR/rcpt": "relay.example OK\nother.example OK\n"},
		mainCF: []string{
			"mynetworks = 127.0.0.1/32",
			"relay_domains =",
			"smtpd_relay_restrictions =",
			"smtpd_recipient_restrictions = check_recipient_access hash:DIR/rcpt, permit_mynetworks, reject_unauth_destination",
		},
		toml: `[policy]
mynetworks = ["127.0.0.1/32"]
relay_restrictions = []
recipient_restrictions = ["check_recipient_access hash:DIR/rcpt", "permit_mynetworks", "reject_unauth_destination"]
`,
		dialogues: []pf5Dialogue{outside, pf5Session("127.0.0.1", "client.example", pf5Tx("s@example.org", rcpts...))},
	})
}
