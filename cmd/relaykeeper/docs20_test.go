package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/config"
)

// otherPrograms' switches appear in the documents in other programs'
// command lines: swaks, curl, systemd's tools, SpamAssassin, and
// emailrelay-submit's switches that docs/pop3.md says are not taken.
var otherPrograms = []string{
	"to", "server", "from", "body", // swaks
	"max-time",      // curl
	"create", "now", // systemd-tmpfiles, systemctl
	"exit-code",                                     // spamassassin
	"copy", "auth", "from-auth-in", "from-auth-out", // emailrelay-submit, "not supported"
}

var docSwitch = regexp.MustCompile("(?:^|[\\s`(\\[|,=\"])--([a-z][a-z0-9-]*[a-z0-9])")

// TestDocs20SwitchesExist: every --switch the README, docs/ and the
// systemd unit name is one relaykeeper has: the relay's own (--help), a
// subcommand's (its usage text), or one of E-MailRelay's that it refuses
// with what to do instead (the README lists those); the few that belong to
// other programs' command lines are named above.
func TestDocs20SwitchesExist(t *testing.T) {
	known := map[string]bool{}
	for _, s := range config.Switches() {
		known[s.Long] = true
	}
	for _, sub := range program().Subcommands {
		for _, m := range docSwitch.FindAllStringSubmatch(sub.Usage, -1) {
			known[m[1]] = true
		}
	}
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md", "../../etc/relaykeeper.service")
	seen := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			for _, m := range docSwitch.FindAllStringSubmatch(line, -1) {
				name := m[1]
				seen++
				if known[name] || slices.Contains(otherPrograms, name) {
					continue
				}
				_, err := config.ParseSwitches([]string{"--" + name})
				if err != nil && strings.Contains(err.Error(), "E-MailRelay's switch is not supported") {
					continue
				}
				t.Errorf("%s:%d: --%s is no switch of relaykeeper's or its subcommands' (%v)", filepath.Base(f), n+1, name, err)
			}
		}
	}
	if seen < 200 {
		t.Errorf("found %d switches in the documents; want the 300 or so there are", seen)
	}
}

// TestDocs20LogPathsWritable: a log file the documents give the relay
// (--log-file, [log] mail_log, stats' argument) is in the directory the
// systemd unit lets it write, its LogsDirectory under /var/log. The unit
// mounts everything else read-only (ProtectSystem=strict), so the README's
// /var/log/relaykeeper-mail.log and operations.md's
// --log-file /var/log/relaykeeper-%d stopped the start under the unit
// the same page installs.
func TestDocs20LogPathsWritable(t *testing.T) {
	unit, err := os.ReadFile("../../etc/relaykeeper.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LogsDirectory=(\S+)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("etc/relaykeeper.service has no LogsDirectory=")
	}
	dir := "/var/log/" + string(m[1]) + "/"
	path := regexp.MustCompile(`/var/log/relaykeeper[^\s` + "`" + `"')]*`)
	files, _ := filepath.Glob("../../docs/*.md")
	for _, f := range append(files, "../../README.md") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			for _, p := range path.FindAllString(line, -1) {
				if p != strings.TrimSuffix(dir, "/") && !strings.HasPrefix(p, dir) {
					t.Errorf("%s:%d: %s is outside %s, the only log directory etc/relaykeeper.service lets the relay write", filepath.Base(f), n+1, p, dir)
				}
			}
		}
	}
}

// TestDocs20TLSConfigKeywords: the --tls-config keywords the README and
// docs/tls.md say are taken are exactly those the relay takes. The README
// left out -tlsv1.3, which the relay takes (--help says so), so a reader
// converting an E-MailRelay command line took it out for nothing.
func TestDocs20TLSConfigKeywords(t *testing.T) {
	taken := map[string]bool{}
	for _, k := range []string{"openssl", "mbedtls", "tlsv1.2", "-tlsv1.3", "tlsv1.3", "-tlsv1.2", "tlsv1.1", "-tlsv1.1", "tlsv1.0", "nocheck"} {
		_, err := config.ParseSwitches([]string{"--tls-config=" + k})
		taken[k] = err == nil
	}
	keyword := regexp.MustCompile("`(-?[a-z0-9.]+)`")
	for file, clause := range map[string]*regexp.Regexp{
		"README.md":   regexp.MustCompile("`--tls-config` with a keyword other than ([^(]*)\\("),
		"docs/tls.md": regexp.MustCompile("`--tls-config` is taken only as (.*?) \\(the highest"),
	} {
		data, err := os.ReadFile("../../" + file)
		if err != nil {
			t.Fatal(err)
		}
		m := clause.FindStringSubmatch(strings.Join(strings.Fields(string(data)), " "))
		if m == nil {
			t.Errorf("%s: no sentence listing the --tls-config keywords taken", file)
			continue
		}
		listed := map[string]bool{}
		for _, k := range keyword.FindAllStringSubmatch(m[1], -1) {
			listed[k[1]] = true
		}
		for k, ok := range taken {
			if ok != listed[k] {
				t.Errorf("%s: --tls-config %s: taken %v, listed as taken %v (%q)", file, k, ok, listed[k], m[1])
			}
		}
	}
}
