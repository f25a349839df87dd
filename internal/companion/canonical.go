package companion

import (
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/rewrite"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// postfixCanonical returns the domains Postfix's sender canonical maps
// (sender_canonical_maps, canonical_maps) map into, asked at each decision:
// qmgr logs the mapped sender, whose domain is then the relay owner's, not
// the client's, and must never be blocked (as the relay never blocks its
// own canonical maps' targets). The maps are those postconf reports (its
// MAIL_CONFIG, as Postfix's commands read it), opened as relaykeeper opens
// tables (hash:FILE reads FILE) and read again when they change; a map it
// cannot open is logged and left out. nil without postconf or maps.
func postfixCanonical(diag *slog.Logger) func() []string {
	bin, err := exec.LookPath("postconf")
	if err != nil {
		return nil
	}
	if diag == nil {
		diag = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-xh", "sender_canonical_maps", "canonical_maps").Output()
	if err != nil {
		diag.Warn("postconf failed; the domains Postfix's canonical maps map into are not known", "err", err)
		return nil
	}
	set := &table.Set{}
	var c rewrite.Canonical
	for _, spec := range strings.FieldsFunc(string(out), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
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
