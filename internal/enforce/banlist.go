package enforce

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
	"github.com/relaykeeper/relaykeeper/internal/termsafe"
)

// WriteBanList writes bans as a table (IP, FROM, UNTIL, REASON, times in
// UTC, RFC 3339, FROM "-" for a ban in force since it was written) or, with asJSON, as an indented JSON array ([] for none).
func WriteBanList(w io.Writer, list []BanEntry, asJSON bool) error {
	if asJSON {
		if list == nil {
			list = []BanEntry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "IP\tFROM\tUNTIL\tREASON")
	for _, ban := range list {
		from := "-" // written by hand without from= or added=: in force already
		if !ban.From.IsZero() {
			from = ban.From.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ban.IP, from, ban.Until.UTC().Format(time.RFC3339),
			termsafe.Field(ban.Reason)) // an upstream's reply quoted: a stranger's text, for a terminal
	}
	return tw.Flush()
}

// OpenBansByHand opens the ban file for an operator's changes: its
// directory is made first (the enforcer's directory in the spool may not
// exist before the relay first ran with enforcement on), and a ban added
// takes effect at once, since no reply is on its way to the client.
func OpenBansByHand(path string) (*Bans, error) {
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("enforce: %w", err)
	}
	if o := safefile.DirOwner(filepath.Dir(dir)); o != nil && os.IsNotExist(statErr) {
		os.Chown(dir, o.UID, o.GID) // made by root just now: the relay's
	}
	b, err := OpenBans(path, nil)
	if err != nil {
		return nil, err
	}
	b.Delay = 0
	return b, nil
}
