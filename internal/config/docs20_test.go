package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docsTOMLFragments are the ```toml blocks that are not a whole file on
// purpose, by file and first lines, with the one problem they may have:
// the text around them says what they go with.
var docsTOMLFragments = map[string]string{
	// "Instead of" the [routing] of the block before it, whose
	// [transports.out_default] it uses.
	"routing.md:[routing]\ndefault_transport": `routing.default_transport: "out_default" is not a transport`,
}

// tomlBlocks returns the ```toml blocks of the README and docs/*.md, each
// with its file and line.
func tomlBlocks(t *testing.T) (blocks []struct{ where, text string }) {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	for _, f := range append(files, "../../README.md") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) != "```toml" {
				continue
			}
			indent := lines[i][:strings.Index(lines[i], "`")]
			start := i + 1
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			}
			var b strings.Builder
			for _, l := range lines[start:i] {
				b.WriteString(strings.TrimPrefix(l, indent) + "\n")
			}
			blocks = append(blocks, struct{ where, text string }{filepath.Base(f) + ":" + strconv.Itoa(start), b.String()})
		}
	}
	return blocks
}

// TestDocs20TOMLBlocksLoad: every TOML example in the README and docs/
// works when copied into relaykeeper.toml as it stands: it parses, names
// only keys relaykeeper knows, in the section they belong to, and passes
// Validate (the tables and key files it names are the reader's own and
// are not opened here). policy.md's check_policy_service example gave
// recipient_restrictions outside [policy], which a start refuses
// ("unknown key; recipient_restrictions is a key of [policy]").
func TestDocs20TOMLBlocksLoad(t *testing.T) {
	blocks := tomlBlocks(t)
	if len(blocks) < 20 {
		t.Fatalf("found %d ```toml blocks in README.md and docs/; want the 26 or so there are", len(blocks))
	}
	dir := t.TempDir()
	for i, b := range blocks {
		path := filepath.Join(dir, strconv.Itoa(i)+".toml")
		if err := os.WriteFile(path, []byte(b.text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Errorf("%s: the example does not load:\n%v\n%s", b.where, err, b.text)
			continue
		}
		file, _, _ := strings.Cut(b.where, ":")
		if err := c.Validate(); err != nil && !isFragment(file, b.text, err) {
			t.Errorf("%s: the example is refused at start:\n%v\n%s", b.where, err, b.text)
		}
	}
}

func isFragment(file, text string, err error) bool {
	for key, problem := range docsTOMLFragments {
		f, first, _ := strings.Cut(key, ":")
		if f == file && strings.HasPrefix(text, first) && strings.Count(err.Error(), "\n") == 0 && strings.Contains(err.Error(), problem) {
			return true
		}
	}
	return false
}

// TestDocs20ForwardToEmpty: etc/relaykeeper.toml said an empty forward.to
// "means no forwarding", while the relay it configures, given a trigger
// (the unit's --forward-on-disconnect), sends the mail to each recipient's
// domain by MX: an operator leaving it empty to keep mail in the spool
// found it going out to the Internet instead. The comment above "to" must
// say what DeliversByMX does.
func TestDocs20ForwardToEmpty(t *testing.T) {
	c, err := Load("../../etc/relaykeeper.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.Forward.OnDisconnect = true
	if c.Forward.To != "" || !c.DeliversByMX() {
		t.Fatalf("etc/relaykeeper.toml with on_disconnect: forward.to = %q, DeliversByMX() = %v; want \"\" and true", c.Forward.To, c.DeliversByMX())
	}
	data, err := os.ReadFile("../../etc/relaykeeper.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "\n[forward]\n")
	comment, _, _ := strings.Cut(section, "\nto = ")
	if strings.Contains(comment, "no forwarding") || !strings.Contains(comment, "MX") {
		t.Errorf("etc/relaykeeper.toml's comment on forward.to does not say that empty means delivery by MX:\n%s", comment)
	}
}

// TestDocs20POPAuthDefault: --pop without --pop-auth reads DefaultPOPAuth,
// as E-MailRelay's reads /etc/emailrelay.auth (its user guide's "emailrelay
// --pop --no-smtp --log --close-stderr"), but docs/pop3.md called
// --pop-auth "required" and --help said --pop "needs --pop-auth": a reader
// could not learn which file the relay opened. The page, the switch's help
// and etc/relaykeeper.toml now name it.
func TestDocs20POPAuthDefault(t *testing.T) {
	for _, f := range []string{"../../docs/pop3.md", "../../etc/relaykeeper.toml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), DefaultPOPAuth) {
			t.Errorf("%s does not name %s, the accounts file --pop reads without --pop-auth", f, DefaultPOPAuth)
		}
	}
	for _, s := range Switches() {
		if s.Long == "pop-auth" && !strings.Contains(s.Help, DefaultPOPAuth) {
			t.Errorf("--pop-auth's help %q does not give its default, %s", s.Help, DefaultPOPAuth)
		}
		if s.Long == "pop" && strings.Contains(s.Help, "needs --pop-auth") {
			t.Errorf("--pop's help %q says it needs --pop-auth; it reads %s without it", s.Help, DefaultPOPAuth)
		}
	}
}

// TestDocs20RestrictionListsExist: every restriction list the README and
// docs/ name (`..._restrictions`) is a key of [policy], or Postfix's own
// (smtpd_...). policy.md told policy-service authors that MAIL is sent
// "in mail_restrictions", a list no configuration file can set: the
// relay refused the key at start.
func TestDocs20RestrictionListsExist(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	name := regexp.MustCompile("`([a-z_]+_restrictions)`")
	dir := t.TempDir()
	for _, f := range append(files, "../../README.md") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(data), -1) {
			if strings.HasPrefix(m[1], "smtpd_") {
				continue
			}
			path := filepath.Join(dir, m[1]+".toml")
			if err := os.WriteFile(path, []byte("[policy]\n"+m[1]+" = []\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err != nil {
				t.Errorf("%s names %s, which is no key of [policy]: %v", filepath.Base(f), m[1], err)
			}
		}
	}
}
