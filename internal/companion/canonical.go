package companion

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/rewrite"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// postfixOwnDomains returns Postfix's own domains as postconf reports them
// (its MAIL_CONFIG, $-expanded): myorigin, mydomain and the names in
// mydestination (maps and entries that are not domains are left out). They
// are the owner's, as the relay's own domain is, and never blocked: with
// them blocked in sender_access, every user of the site would be refused
// for a spammer's mail sent as one of them. nil without postconf.
func postfixOwnDomains(diag *slog.Logger) []string {
	out, ok := postconf(diag, "the domains of Postfix's own are not known", "myorigin", "mydomain", "mydestination")
	if !ok {
		return nil
	}
	var own []string
	for _, d := range strings.FieldsFunc(out, postconfSep) {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if strings.Contains(d, ".") && !strings.ContainsAny(d, ":/$@[]") {
			own = append(own, d)
		}
	}
	return own
}

// postfixMynetworks are the networks of Postfix's mynetworks, as postconf
// reports it (a file or a table it names is left out): no ban of a
// network may cover them, since fail2ban would cut Postfix's trusted
// clients off. nil without postconf.
func postfixMynetworks(diag *slog.Logger) []netip.Prefix {
	out, ok := postconf(diag, "Postfix's mynetworks are not spared from bans of networks", "mynetworks")
	if !ok {
		return nil
	}
	var nets []netip.Prefix
	for _, w := range strings.FieldsFunc(out, postconfSep) {
		w = strings.TrimSuffix(strings.TrimPrefix(w, "["), "]")
		w = strings.Replace(w, "]/", "/", 1) // [2001:db8::]/64
		if p, err := netip.ParsePrefix(w); err == nil {
			nets = append(nets, p.Masked())
		} else if ip, err := netip.ParseAddr(w); err == nil {
			nets = append(nets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		}
	}
	return nets
}

// postconf runs "postconf -xh NAMES...", with a diagnostic naming what is
// then unknown if it fails; false without postconf or when it failed.
func postconf(diag *slog.Logger, unknown string, names ...string) (string, bool) {
	bin, err := exec.LookPath("postconf")
	if err != nil {
		return "", false
	}
	if diag == nil {
		diag = slog.New(slog.DiscardHandler)
	}
	// Without main.cf (Debian's package before it is configured) postconf
	// fails after the second's pause of every Postfix fatal error: three
	// of them made postfix-enforcer start three seconds late.
	mainCF := filepath.Join(postfixConfigDir(bin), "main.cf")
	if _, err := os.Stat(mainCF); errors.Is(err, fs.ErrNotExist) {
		diag.Warn("Postfix has no main.cf; "+unknown, "file", mainCF)
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-xh"}, names...)...).Output()
	if err != nil {
		diag.Warn("postconf failed; "+unknown, "err", err)
		return "", false
	}
	return string(out), true
}

// postfixConfigDir is where postconf reads main.cf: MAIL_CONFIG, else
// the build's config_directory ("postconf -d" reads no main.cf: FreeBSD's
// is /usr/local/etc/postfix), else Debian's.
func postfixConfigDir(bin string) string {
	if d := os.Getenv("MAIL_CONFIG"); d != "" {
		return d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-dh", "config_directory").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); filepath.IsAbs(d) {
			return d
		}
	}
	return "/etc/postfix"
}

// postconfSep splits postconf's list values.
func postconfSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }

// postfixCanonical returns the domains Postfix's sender canonical maps
// (sender_canonical_maps, canonical_maps) map into, asked at each decision:
// qmgr logs the mapped sender, whose domain is then the relay owner's, not
// the client's, and must never be blocked (as the relay never blocks its
// own canonical maps' targets). The maps are those postconf reports (its
// MAIL_CONFIG, as Postfix's commands read it), opened as relaykeeper opens
// tables (hash:FILE reads FILE) and read again when they change; a map it
// cannot open is logged and left out. nil without postconf or maps.
func postfixCanonical(diag *slog.Logger) func() []string {
	out, ok := postconf(diag, "the domains Postfix's canonical maps map into are not known", "sender_canonical_maps", "canonical_maps")
	if !ok {
		return nil
	}
	if diag == nil {
		diag = slog.New(slog.DiscardHandler)
	}
	set := &table.Set{}
	var c rewrite.Canonical
	for _, spec := range strings.FieldsFunc(out, postconfSep) {
		t, err := set.Open(strings.TrimPrefix(spec, "proxy:"))
		if err != nil {
			diag.Warn("a canonical map of Postfix's is not read; the domains it maps into may be blocked", "map", spec, "err", err)
			continue
		}
		c.Sender = append(c.Sender, t)
	}
	if !c.Enabled() {
		return nil
	}
	return func() []string {
		set.ReloadAll()
		return c.TargetDomains()
	}
}
