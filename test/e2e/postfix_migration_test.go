package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// workedExampleTOML returns the first ```toml block after the "## Worked
// example" heading of docs/postfix-migration.md: the page's translation of
// the seed guide's main.cf, tested here as it is printed.
func workedExampleTOML(t *testing.T) string {
	t.Helper()
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "postfix-migration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(page), "\n## Worked example")
	if !ok {
		t.Fatal(`docs/postfix-migration.md has no "## Worked example" section`)
	}
	_, rest, ok = strings.Cut(rest, "```toml\n")
	if !ok {
		t.Fatal("the worked example has no ```toml block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the worked example's ```toml block is not closed")
	}
	return block
}

// TestPostfixMigrationExample: the worked example of
// docs/postfix-migration.md (the seed guide's main.cf, master.cf and tables
// in relaykeeper's TOML) starts the real binary with the guide's own table
// files, relays a message from a mynetworks client through the guide's
// out_default transport (to a sink standing in for the next hop), and
// refuses a stranger with Postfix's "554 5.7.1 Relay access denied". The
// guide's header_checks rewrite and drop headers as its pcre table says.
// Only what cannot be used on a test machine is changed: /etc/postfix and
// /etc/relaykeeper become a temporary directory, the documentation source
// addresses become 127.0.0.1, and out_default gets the sink as next hop
// instead of the recipient's MX.
func TestPostfixMigrationExample(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	// The seed's files, as the page shows them.
	writeFile(t, dir, "mynetworks", "127.0.0.1/32\n[::1]/128\n", 0o644)
	writeFile(t, dir, "transport_maps", "* out_default:\nqq.com qq_com_limit:\n", 0o644)
	writeFile(t, dir, "sender_transport_maps", "@zombig.name zombig_name\n", 0o644)
	writeFile(t, dir, "header_checks", `# Our clients must specify realy FQDN names. Ignore if not!
/.*localhost.*/ IGNORE
# Hide our SSO real IP address
/^(Received: from) sso-api-[\d\.\w]+ \([\w\-\.\d]+ \[[\d\.]+\]\)(.*)$/ REPLACE ${1} login.zombig.name (unknown [unknown]) ${2}
`, 0o644)
	writeFile(t, dir, "debug_peer_list", "qq.com\n", 0o644)
	cert, key, _ := certFiles(t, dir)
	os.MkdirAll(filepath.Join(dir, "ssl"), 0o755)
	os.Rename(cert, filepath.Join(dir, "ssl", "smtpd.crt"))
	os.Rename(key, filepath.Join(dir, "ssl", "smtpd.key"))

	toml := workedExampleTOML(t)
	for _, must := range []string{"[transports.out_default]\n", `"192.0.2.20"`, `"192.0.2.21"`, "/etc/postfix/"} {
		if !strings.Contains(toml, must) {
			t.Fatalf("the worked example no longer has %q; update this test", must)
		}
	}
	toml = strings.NewReplacer(
		"/etc/postfix/", dir+"/",
		`"192.0.2.20"`, `"127.0.0.1"`,
		`"192.0.2.21"`, `"127.0.0.1"`,
		"[transports.out_default]\n", fmt.Sprintf("[transports.out_default]\nnexthop = \"[%s]:%s\"\n", hostOf(sink.Addr()), portOf(sink.Addr())),
	).Replace(toml)
	cfg := filepath.Join(dir, "relaykeeper.toml")
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, "127.0.0.1", "--config", cfg, "--spool-dir", t.TempDir())

	// The guide's test: mail -r testing@zombig.name, from the relay host.
	msg := "Received: from sso-api-01.zombig.name (sso-api-01.zombig.name [192.0.2.5]) by relay.zombig.name\n" +
		"X-Origin: localhost.localdomain\n" + message("Relay Service Test message")
	mustSend(t, r.addr(), "testing@zombig.name", []string{"someone@example.com"}, msg)
	got := sink.WaitTransactions(t, 1, 15*time.Second)
	// The guide's header_checks, unchanged: the SSO host's Received line
	// is rewritten (REPLACE), a header naming localhost is dropped (IGNORE).
	data := string(got[0].Data)
	if !strings.Contains(data, "Received: from login.zombig.name (unknown [unknown])") || strings.Contains(data, "sso-api-01") {
		t.Errorf("the SSO Received header was not rewritten:\n%s", data)
	}
	if strings.Contains(data, "X-Origin") {
		t.Errorf("the header naming localhost was not dropped:\n%s", data)
	}
	if to := got[0].To(); len(to) != 1 || to[0] != "someone@example.com" || got[0].MailFrom != "testing@zombig.name" {
		t.Errorf("the next hop got %q -> %v; want testing@zombig.name -> someone@example.com", got[0].MailFrom, to)
	}
	if got[0].Helo != "relay.zombig.name" {
		t.Errorf("out_default sent EHLO %q; want its helo_name relay.zombig.name", got[0].Helo)
	}

	// A client outside mynetworks (127.0.0.2 is loopback, so it may
	// connect, but it is not 127.0.0.1/32) may not relay. It is greeted
	// with the guide's smtpd_banner.
	c, greet, err := dialFrom(r.addr(), "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if g := greet.String(); !strings.HasPrefix(g, "220 ") || !strings.HasSuffix(g, " ESMTP relaykeeper") || strings.Contains(g, "$") {
		t.Errorf("greeting %q; want the guide's banner, 220 DOMAIN ESMTP relaykeeper", g)
	}
	mustCmd(t, c, "250", "EHLO stranger.example")
	mustCmd(t, c, "250", "MAIL FROM:<someone@stranger.example>")
	mustCmd(t, c, "554 5.7.1 <victim@example.net>: Relay access denied", "RCPT TO:<victim@example.net>")
}

// TestPostfixMigrationKeys: every "section.key" that
// docs/postfix-migration.md names (in backquotes) is a key of
// etc/relaykeeper.toml, and the binary starts with all of them set to the
// example file's values: an unknown key would stop it at start, so the page
// cannot send an administrator to a key that does not exist.
func TestPostfixMigrationKeys(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "postfix-migration.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("..", "..", "etc", "relaykeeper.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The example file's "key = value" lines by section.key.
	lines := map[string]string{}
	section := ""
	for l := range strings.Lines(string(example)) {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			section = strings.Trim(l, "[]")
			continue
		}
		if k, _, ok := strings.Cut(l, " = "); ok && section != "" && !strings.HasPrefix(l, "#") {
			lines[section+"."+k] = l
		}
	}
	named := regexp.MustCompile("`(smtp|spool|forward|delivery|log|tls|auth|policy|enforce|milter|routing)\\.([a-z_0-9]+)")
	bySection := map[string][]string{}
	seen := map[string]bool{}
	for _, m := range named.FindAllStringSubmatch(string(page), -1) {
		key := m[1] + "." + m[2]
		if seen[key] {
			continue
		}
		seen[key] = true
		l, ok := lines[key]
		if !ok {
			t.Errorf("the page names %s, which etc/relaykeeper.toml does not have", key)
			continue
		}
		bySection[m[1]] = append(bySection[m[1]], l)
	}
	if len(seen) < 50 {
		t.Fatalf("found only %d keys on the page; the pattern no longer matches how it writes them", len(seen))
	}
	var cfg strings.Builder
	cfg.WriteString("domain = \"relay.test\"\nrecipient_delimiter = \"+\"\n")
	for s, ls := range bySection {
		fmt.Fprintf(&cfg, "[%s]\n%s\n", s, strings.Join(ls, "\n"))
	}
	p := filepath.Join(t.TempDir(), "keys.toml")
	if err := os.WriteFile(p, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--config", p, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustDial(t, r.addr(), "")
}
