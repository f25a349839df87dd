package policy

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestRevPF5UnknownClientName: a client without a verified name is looked
// up in check_client_access tables by the name "unknown" before its
// address, and one without a PTR name likewise in
// check_reverse_client_hostname_access, as Postfix's smtpd looks up
// state->name and state->reverse_name: a regexp table's /^unknown$/ rule
// refuses it, and a negated rule (!/\.example\.com$/ DUNNO) matches it
// before the address is looked at.
func TestRevPF5UnknownClientName(t *testing.T) {
	for _, c := range []struct {
		check, table, name, want string
	}{
		{"check_client_access", "regexp:{ {/^unknown$/ REJECT nameless} }", "", "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: nameless"},
		{"check_client_access", "regexp:{ {/^unknown$/ REJECT nameless} }", "mail.example.com", ""},
		{"check_client_access", "regexp:{ {!/^192\\./ DUNNO}, {/^192\\./ REJECT by address} }", "", ""},
		{"check_client_access", "inline:{ unknown=REJECT }", "", "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied"},
		{"check_reverse_client_hostname_access", "regexp:{ {/^unknown$/ REJECT no ptr} }", "", "554 5.7.1 <unknown[192.0.2.1]>: Unverified Client host rejected: no ptr"},
	} {
		e := engine(t, Options{
			MyNetworks:   []netip.Prefix{},
			RelayDomains: []string{"relay.example"},
			Tables:       SetTables{Set: &table.Set{}},
			Client:       []string{c.check + " " + c.table},
		})
		req := &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), ClientName: c.name, ReverseName: c.name,
			Sender: "a@x.example", Recipient: "r@relay.example"}
		d := e.Check(context.Background(), StageRcpt, req)
		got := refusal(d)
		if got != c.want {
			t.Errorf("%s %s, client name %q: %q; want %q", c.check, c.table, c.name, got, c.want)
		}
	}
}

// TestRevPF5HeloHostname: reject_invalid_helo_hostname and
// reject_non_fqdn_helo_hostname judge a name as Postfix's valid_hostname
// does: an underscore is allowed (Postfix: "grr.."), and so is a bare IP
// address (valid_hostaddr) by the first; an all-numeric name, a non-ASCII one, a misplaced dot or hyphen, or a label past 63 octets is
// not; and a name that is not valid is no fully-qualified name either
// (504, not 501, from reject_non_fqdn_helo_hostname).
func TestRevPF5HeloHostname(t *testing.T) {
	invalid := func(h string) string { return "501 5.5.2 <" + h + ">: Helo command rejected: Invalid name" }
	nonFQDN := func(h string) string {
		return "504 5.5.2 <" + h + ">: Helo command rejected: need fully-qualified hostname"
	}
	for _, c := range []struct {
		rule, helo, want string
	}{
		{"reject_invalid_helo_hostname", "under_score.example", ""},
		{"reject_invalid_helo_hostname", "_dmarc.example", ""},
		{"reject_invalid_helo_hostname", "client.example.", ""},
		{"reject_invalid_helo_hostname", "localhost", ""},
		{"reject_invalid_helo_hostname", "[192.0.2.1]", ""},
		{"reject_invalid_helo_hostname", "[IPv6:2001:db8::1]", ""},
		{"reject_invalid_helo_hostname", "1.2.3.4", ""},
		{"reject_invalid_helo_hostname", "1.2.3", invalid("1.2.3")},
		{"reject_invalid_helo_hostname", "bücher.example", invalid("bücher.example")},
		{"reject_invalid_helo_hostname", "-a.example", invalid("-a.example")},
		{"reject_invalid_helo_hostname", "a-.example", invalid("a-.example")},
		{"reject_invalid_helo_hostname", "a..example", invalid("a..example")},
		{"reject_invalid_helo_hostname", "a.example..", invalid("a.example..")},
		{"reject_invalid_helo_hostname", strings.Repeat("a", 64) + ".example", invalid(strings.Repeat("a", 64) + ".example")},
		{"reject_invalid_helo_hostname", "[192.0.2.300]", invalid("[192.0.2.300]")},
		{"reject_non_fqdn_helo_hostname", "under_score.example", ""},
		{"reject_non_fqdn_helo_hostname", "[192.0.2.1]", ""},
		{"reject_non_fqdn_helo_hostname", "host_1", nonFQDN("host_1")},
		{"reject_non_fqdn_helo_hostname", "localhost.", nonFQDN("localhost.")},
		{"reject_non_fqdn_helo_hostname", "bücher.example", nonFQDN("bücher.example")},
		{"reject_non_fqdn_helo_hostname", "1.2.3.4", nonFQDN("1.2.3.4")},
	} {
		e := engine(t, Options{MyNetworks: []netip.Prefix{}, RelayDomains: []string{"relay.example"}, Helo: []string{c.rule}})
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Helo: c.helo,
			Sender: "a@x.example", Recipient: "r@relay.example"})
		got := refusal(d)
		if got != c.want {
			t.Errorf("%s, HELO %s: %q; want %q", c.rule, c.helo, got, c.want)
		}
	}
}

// TestRevPF5NegatedNetworks: mynetworks takes Postfix's "!pattern", which
// excludes what it matches, read in order: the first entry that matches a
// client decides, so "!192.0.2.66, 192.0.2.0/24" trusts the network but
// that host, and a negation behind a network that already holds the host
// changes nothing, as in Postfix. A negated file or table excludes all it
// holds.
func TestRevPF5NegatedNetworks(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "excluded")
	os.WriteFile(list, []byte("198.51.100.7 # not this one\n"), 0o644)
	var set table.Set
	checkTrusted(t, &set, []string{"!192.0.2.66", "192.0.2.0/24", "!" + list, "198.51.100.0/24", "203.0.113.0/24", "!203.0.113.9", "![2001:db8::1]", "[2001:db8::]/32"}, map[string]bool{
		"192.0.2.1": true, "192.0.2.66": false, "198.51.100.1": true, "198.51.100.7": false,
		"203.0.113.9": true, "2001:db8::1": false, "2001:db8::2": true, "10.0.0.1": false,
	})
	if _, err := ParseNetworks([]string{"!", "!nonsense"}, &set); err == nil {
		t.Error("ParseNetworks(\"!\", \"!nonsense\"): no error")
	}
}

// TestRevPF5DeferUnauthDestination: defer_unauth_destination, Postfix's
// default smtpd_relay_restrictions and Debian's, answers as Postfix's
// smtpd does, 454 4.7.1 (not the 450 of defer_code).
func TestRevPF5DeferUnauthDestination(t *testing.T) {
	e := engine(t, Options{MyNetworks: []netip.Prefix{}, RelayDomains: []string{"relay.example"},
		Relay: []string{"permit_mynetworks", "defer_unauth_destination"}})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "a@x.example", Recipient: "r@other.example"})
	if want := "454 4.7.1 <r@other.example>: Relay access denied"; d.Reply() != want {
		t.Errorf("defer_unauth_destination: %q; want %q", d.Reply(), want)
	}
}

// TestRevPF5AddressLookupFolded: Postfix looks sender and recipient
// addresses up in lower case (mail_addr_find casefolds them), in every
// table type: a regexp rule made case-sensitive by its i flag
// (/^Case@/i) never matches "Case@...", and substitutions insert lower
// case; the reply still names the address as it was given.
func TestRevPF5AddressLookupFolded(t *testing.T) {
	for _, c := range []struct {
		check, table, addr, want string
	}{
		{"check_sender_access", "regexp:{ {/^Case@Exact\\.example$/i REJECT sensitive} }", "Case@Exact.example", ""},
		{"check_sender_access", "regexp:{ {/^case@exact\\.example$/i REJECT sensitive} }", "Case@Exact.example", "554 5.7.1 <Case@Exact.example>: Sender address rejected: sensitive"},
		{"check_sender_access", "pcre:{ {/^(\\w+)@/ REJECT user $1} }", "Bob@x.example", "554 5.7.1 <Bob@x.example>: Sender address rejected: user bob"},
		{"check_recipient_access", "regexp:{ {/^Case@/i REJECT sensitive} }", "Case@relay.example", ""},
		{"check_recipient_access", "regexp:{ {/^[a-z]+@/i DUNNO}, {/./ REJECT fallthrough} }", "Bob@relay.example", ""},
	} {
		list := Options{Sender: []string{c.check + " " + c.table}}
		if c.check == "check_recipient_access" {
			list = Options{Recipient: []string{c.check + " " + c.table}}
		}
		list.MyNetworks, list.RelayDomains, list.Tables = []netip.Prefix{}, []string{"relay.example"}, SetTables{Set: &table.Set{}}
		e := engine(t, list)
		req := &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: c.addr, Recipient: "r@relay.example"}
		if c.check == "check_recipient_access" {
			req.Sender, req.Recipient = "a@x.example", c.addr
		}
		d := e.Check(context.Background(), StageRcpt, req)
		got := refusal(d)
		if got != c.want {
			t.Errorf("%s %s, %s: %q; want %q", c.check, c.table, c.addr, got, c.want)
		}
	}
}

// refusal is the reply of a decision that refuses, "" for one that does
// not.
func refusal(d Decision) string {
	if d.Refuses() {
		return d.Reply()
	}
	return ""
}
