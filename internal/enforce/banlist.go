package enforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/termsafe"
)

// WriteBanList writes bans as a table (IP: the address, or the network
// ADDR/LEN, as an IPv6 client's /64; FROM, UNTIL, REASON; times in UTC,
// RFC 3339, FROM "-" for a ban in force since it was written) or, with
// asJSON, as an indented JSON array ([] for none; each ban's "net" is the
// IP column, "client" the client it was banned for, if known).
//
// A ban of an address welcome lists (nil: none) is not applied while it
// is listed: its REASON starts "[not applied: welcomelisted]", its JSON
// has "not_applied": "welcomelisted".
func WriteBanList(w io.Writer, list []BanEntry, asJSON bool, welcome *Welcomelist) error {
	notApplied := func(ban BanEntry) string { return NotApplied(ban, welcome) }
	if asJSON {
		out := ListedBans(list, welcome)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "IP\tFROM\tUNTIL\tREASON")
	for _, ban := range list {
		from := "-" // written by hand without from= or added=: in force already
		if !ban.From.IsZero() {
			from = ban.From.UTC().Format(time.RFC3339)
		}
		reason := termsafe.Field(ban.Reason) // an upstream's reply quoted: a stranger's text, for a terminal
		if why := notApplied(ban); why != "" {
			reason = "[not applied: " + why + "] " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ban.Target(), from, ban.Until.UTC().Format(time.RFC3339), reason)
	}
	return tw.Flush()
}

// NotApplied says why ban is not applied: "welcomelisted" for a ban of an
// address welcome lists (a nil list or *Welcomelist: none), which the
// relay ignores while it is listed; "" for a ban in force. A ban of a
// network is applied, to every address in it but the welcomelisted ones.
func NotApplied(ban BanEntry, welcome Welcomer) string {
	if welcome != nil && ban.Network().IsSingleIP() && welcome.Welcome(ban.IP, "") {
		return "welcomelisted"
	}
	return ""
}

// ListedBans are the bans as JSON, each with "not_applied" as NotApplied
// says (left out for a ban in force), for a listing: bans list --json and
// the admin dashboard's /api/bans.
func ListedBans(list []BanEntry, welcome Welcomer) []json.RawMessage {
	out := []json.RawMessage{}
	for _, ban := range list {
		b, _ := marshalBan(ban, NotApplied(ban, welcome)) // plain fields: never fails
		out = append(out, b)
	}
	return out
}

// NotAppliedWarning is what an operator who has just banned ban by hand
// is told when it will not apply (NotApplied), naming the list; "" when
// it applies.
func NotAppliedWarning(ban BanEntry, welcome *Welcomelist) string {
	if NotApplied(ban, welcome) == "" {
		return ""
	}
	return fmt.Sprintf("%s is welcomelisted (%s): the ban is not applied while it is listed there", ban.Target(), welcome.Path())
}

// WelcomelistIfAny reads the welcomelist at path, as OpenWelcomelist
// does, but makes none: nil when there is no such file.
func WelcomelistIfAny(path string) (*Welcomelist, error) {
	if !exists(path) {
		return nil, nil
	}
	return OpenWelcomelist(path)
}

// OpenBansByHand opens the ban file for an operator's changes: its
// directory is made first (the enforcer's directory in the spool may not
// exist before the relay first ran with enforcement on), and a ban added
// takes effect at once, since no reply is on its way to the client. The
// directory above that one (the spool) must exist: a mistyped --spool-dir
// is reported, never made into an empty spool whose list shows no bans.
func OpenBansByHand(path string) (*Bans, error) {
	if above := filepath.Dir(filepath.Dir(path)); !exists(above) {
		return nil, fmt.Errorf("enforce: %s does not exist: name the spool directory the relay uses (--spool-dir, --config), or a ban file in an existing directory (--bans)", above)
	}
	if err := makeStateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	b, err := OpenBans(path, nil)
	if err != nil {
		return nil, err
	}
	b.Delay = 0
	return b, nil
}

// exists reports whether path names something: a directory that cannot
// be looked at for another reason is left to the attempt to use it.
func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// LiftedText says what lifting the bans of target (as the administrator
// wrote it) did, a line per ban lifted: "2001:db8::/64 no longer banned",
// and for a network lifted by an address inside it, which network that
// was ("2001:db8::/64 no longer banned (it held 2001:db8::7)"), so that
// nobody takes it for the address alone.
func LiftedText(target string, lifted []BanEntry) string {
	var sb strings.Builder
	t, _ := ParseBanTarget(target)
	for _, b := range lifted {
		sb.WriteString(b.Target() + " no longer banned")
		if n := b.Network(); n != t && t.IsValid() && n.Bits() < t.Bits() {
			sb.WriteString(" (it held " + banTarget(t) + ")")
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
