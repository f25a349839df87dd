package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocs26PastedRelayRestrictions: docs/postfix-migration.md says that
// a whole main.cf line pasted as one list item is refused. In
// relay_restrictions and recipient_restrictions it was, but as "neither it
// nor policy.recipient_restrictions has reject_unauth_destination ...:
// anyone could relay anywhere", of a line that names
// reject_unauth_destination. The refusal now says what is wrong and
// gives the list to write; items with braces (a policy service's
// settings, inline: tables) are one restriction still.
func TestDocs26PastedRelayRestrictions(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"[policy]\nrelay_restrictions = [\"permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\"]\n",
			`FILE:2: policy.relay_restrictions: "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination": write one restriction per list item, not main.cf's line: ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]`},
		{"[policy]\nrelay_restrictions = [\"permit_mynetworks\", \"reject_unauth_destination\"]\nrecipient_restrictions = [\"permit_mynetworks reject_unauth_destination\"]\n",
			`FILE:3: policy.recipient_restrictions: "permit_mynetworks reject_unauth_destination": write one restriction per list item, not main.cf's line: ["permit_mynetworks", "reject_unauth_destination"]`},
		{"[policy]\nrelay_restrictions = [\"permit_mynetworks\"]\n",
			"FILE:2: policy.relay_restrictions: neither it nor policy.recipient_restrictions has reject_unauth_destination, reject or defer: anyone could relay anywhere"},
	} {
		docs26Validate(t, tt.src, tt.want)
	}
	path := filepath.Join(t.TempDir(), "relaykeeper.toml")
	src := "[policy]\nrelay_restrictions = [\"permit_mynetworks\", \"check_policy_service { inet:127.0.0.1:10040, default_action=DUNNO }\"," +
		" \"check_client_access inline:{ 192.0.2.1=OK, { 192.0.2.2 = REJECT go away } }\", \"reject_rbl_client zen.example=127.0.0.[2..11]\", \"reject_unauth_destination\"]\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(path); err != nil || c.Validate() != nil {
		t.Errorf("Load(items with braces) = %v, Validate() = %v; want no error", err, c.Validate())
	}
}

// docs26Validate loads src and checks that Validate refuses it with want
// (FILE standing for the file's name).
func docs26Validate(t *testing.T, src, want string) {
	t.Helper()
	c, path := gd27Load(t, src)
	if want = strings.ReplaceAll(want, "FILE", path); c.Validate() == nil || c.Validate().Error() != want {
		t.Errorf("%q: Validate() = %v; want %s", src, c.Validate(), want)
	}
}

// TestDocs26NumberParseErrors: a number too large for any setting was
// refused as "99999999999999999999 is out of range for int64", Go's type
// in the message; a broken hexadecimal number's message held the line's
// newline and broke the report in two.
func TestDocs26NumberParseErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"[delivery]\nconnections = 99999999999999999999\n", "FILE:2: 99999999999999999999 is out of range: no setting takes a number of that size"},
		{"[delivery]\nconnections = -99999999999999999999\n", "FILE:2: -99999999999999999999 is out of range: no setting takes a number of that size"},
		{"[smtp]\nport = 1e999\n", "FILE:2: 1e999 is out of range: no setting takes a number of that size"},
		{"[smtp]\nport = 0x\n", `FILE:2: not a hexadecimal number: '0x\n'`},
	} {
		cfg19Load(t, tt.src, tt.want)
	}
}

// TestDocs26SwitchFileEncoding: E-MailRelay's configuration file saved
// by Windows' Notepad as "Unicode" (UTF-16) was refused as "unknown switch
// --\xff\xfe[\x00s\x00...", the NUL bytes and all printed to the
// terminal; the report now says what the file is and what to do. A line
// in Latin-1 is named likewise; a comment in any encoding is taken.
func TestDocs26SwitchFileEncoding(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, text, want string }{
		{"utf16.conf", "\xff\xfes\x00p\x00o\x00o\x00l\x00-\x00d\x00i\x00r\x00 \x00/\x00x\x00\n\x00",
			`FILE:1: the file holds NUL bytes: it is probably UTF-16 (Windows' "Unicode"); save it as UTF-8`},
		{"latin1.conf", "# caf\xe9\nspool-dir /var/spool/x\ndomain caf\xe9.example\n",
			`FILE:3: "domain caf\xe9.example" is not UTF-8: save the file as UTF-8 (iconv -f latin1 -t utf-8)`},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := switchFileArgs(path)
		if want := strings.ReplaceAll(tt.want, "FILE", path); err == nil || err.Error() != want {
			t.Errorf("switchFileArgs(%s) = %v; want %s", tt.name, err, want)
		}
	}
}

// TestDocs26DKIMNamesAtTheirLines: a [dkim] domain or selector that is no
// name was refused at the line of dkim.key ("dkim.key: dkim: bad domain"),
// and a bad selector only after the domain was fixed. Each is now refused
// at its own line, both at once.
func TestDocs26DKIMNamesAtTheirLines(t *testing.T) {
	docs26Validate(t, "[dkim]\ndomain = \"bad domain\"\nselector = \"s 1\"\nkey = \"/etc/relaykeeper/dkim.pem\"\n",
		"FILE:2: dkim.domain: \"bad domain\" is not a domain name\n"+
			"FILE:3: dkim.selector: \"s 1\" is not a selector: letters, digits, hyphens and underscores, in dot-separated labels")
}

// TestDocs26DoubleBounceRecipient: delivery.double_bounce_recipient was
// taken as anything ("not an address", "Admin <a@b.example>"), and a
// double bounce then went to "not an address@HOST". It must be
// postmaster-like or user@domain, as the example file says.
func TestDocs26DoubleBounceRecipient(t *testing.T) {
	for _, bad := range []string{"not an address", "Admin <a@b.example>", "a@"} {
		docs26Validate(t, "[delivery]\ndouble_bounce_recipient = '"+bad+"'\n",
			"FILE:2: delivery.double_bounce_recipient: \""+bad+"\" is not an address: want postmaster (the relay's domain is added) or user@domain")
	}
	c := Default()
	for _, good := range []string{"postmaster", "ops@example.com", `"john doe"@example.com`} {
		c.Delivery.DoubleBounceRecipient = good
		if err := c.Validate(); err != nil {
			t.Errorf("double_bounce_recipient %q: %v; want accepted", good, err)
		}
	}
}

// TestDocs26EnforceAddressAndDomains: [enforce] relay_address, the sender
// of encapsulated copies and reports, was taken as anything ("not an
// address" went out as MAIL FROM); never_block took "gmail,com" or
// "*.example", which never match and leave the domain meant blockable.
func TestDocs26EnforceAddressAndDomains(t *testing.T) {
	docs26Validate(t, "[enforce]\nrelay_address = \"not an address\"\n",
		`FILE:2: enforce.relay_address: "not an address" is not an address: want one such as postmaster@relay.example.org`)
	docs26Validate(t, "[enforce]\nnever_block = [\"gmail.com\", \"gmail,com\", \"*.example\"]\n",
		"FILE:2: enforce.never_block: \"gmail,com\" is not a domain (one a list item; a domain's subdomains are spared with it)\n"+
			"FILE:2: enforce.never_block: \"*.example\" is not a domain (one a list item; a domain's subdomains are spared with it)")
	c := Default()
	c.Enforce.RelayAddress = "Relay <postmaster@relay.example>"
	c.Enforce.NeverBlock = append(c.Enforce.NeverBlock, ".example.net")
	if err := c.Validate(); err != nil || c.Enforce.RelayAddress != "postmaster@relay.example" {
		t.Errorf("Validate() = %v, relay_address %q; want accepted as postmaster@relay.example", err, c.Enforce.RelayAddress)
	}
}
