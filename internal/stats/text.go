package stats

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/termsafe"
)

// timeFormat is how the report shows its first and last times: UTC, as
// the queue commands show theirs.
const timeFormat = "2006-01-02 15:04:05"

// WriteJSON writes the report as indented JSON; addresses keep their <>.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Summarise is "relaykeeper stats": it reads the mail-log files ("-":
// stdin) and writes their report, the top lists top long, as JSON or as
// text. An error names the file, or says the report could not be written
// (a full disk, a closed pipe): the caller must not say it succeeded.
func Summarise(w io.Writer, files []string, stdin io.Reader, top int, asJSON bool) error {
	a := NewAggregator()
	for _, name := range files {
		if err := a.ReadFile(name, stdin); err != nil {
			return err
		}
	}
	ew := &errWriter{w: w}
	if asJSON {
		WriteJSON(ew, a.Report(top))
	} else {
		WriteText(ew, a.Report(top))
	}
	if ew.err != nil {
		return fmt.Errorf("writing the report: %w", ew.err)
	}
	return nil
}

// errWriter keeps the first error of the writes to w, and writes nothing
// after it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// ReadFile adds one mail-log file ("-": stdin) to a, uncompressing it if
// it is gzip's, as logrotate leaves old logs. Errors name the file.
func (a *Aggregator) ReadFile(name string, stdin io.Reader) error {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	if err := a.Read(r); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// WriteText prints the report as pflogsumm lays its out: grand totals,
// the per-hour table, then the top lists. Addresses, clients and replies
// are strangers' text, unquoted from the mail log: what a terminal would
// take for a control (U+009B, a CSI, in an SMTPUTF8 address) is escaped,
// as in `queue list`.
func WriteText(w io.Writer, r *Report) {
	w = termsafe.Writer{W: w}
	if r.First.IsZero() {
		fmt.Fprintln(w, "relaykeeper mail log summary: no mail-log lines")
	} else {
		fmt.Fprintf(w, "relaykeeper mail log summary: %s to %s UTC\n",
			r.First.UTC().Format(timeFormat), r.Last.UTC().Format(timeFormat))
	}

	heading(w, "Grand Totals")
	count := func(n int, what string) { fmt.Fprintf(w, "%7d   %s\n", n, what) }
	count(r.Received.Messages, fmt.Sprintf("received (%d bytes)", r.Received.Bytes))
	count(r.Delivered.Messages, fmt.Sprintf("delivered (%s)", plural(r.Delivered.Recipients, "recipient")))
	count(r.Deferred.Messages, fmt.Sprintf("deferred (%s)", plural(r.Deferred.Deferrals, "deferral")))
	count(r.Bounced.Messages, fmt.Sprintf("bounced (%s)", plural(r.Bounced.Recipients, "recipient")))
	count(r.Rejected.Total, "rejected"+byKey(r.Rejected.ByStage))
	count(r.Proxied.Total, "proxied"+byKey(r.Proxied.ByResult))
	count(r.Held, "held")
	count(r.Discarded, "discarded")
	count(r.Quarantined, "quarantined")
	count(r.Connections, "connections")
	fmt.Fprintln(w)
	other := ""
	if r.OtherEvents > 0 {
		other = ", " + plural(r.OtherEvents, "event") + " not counted above"
	}
	count(r.Lines, fmt.Sprintf("lines read, %d skipped (not mail-log lines)%s", r.Skipped, other))

	heading(w, "Per-Hour Traffic Summary (UTC, all days)")
	fmt.Fprintf(w, "    %-9s  %8s  %9s  %8s  %7s  %8s\n", "time", "received", "delivered", "deferred", "bounced", "rejected")
	for _, h := range r.Hours {
		fmt.Fprintf(w, "    %02d00-%02d00  %8d  %9d  %8d  %7d  %8d\n", h.Hour, h.Hour+1,
			h.Received, h.Delivered, h.Deferred, h.Bounced, h.Rejected)
	}

	heading(w, "Senders by message count")
	if len(r.Senders) == 0 {
		fmt.Fprintln(w, "    (none)")
	} else {
		fmt.Fprintf(w, "%7s  %6s  %s\n", "msgs", "bytes", "sender")
		for _, s := range r.Senders {
			fmt.Fprintf(w, "%7d  %6s  %s\n", s.Messages, kbytes(s.Bytes), s.Sender)
		}
	}

	heading(w, "Recipient domains by delivery")
	if len(r.RecipientDomains) == 0 {
		fmt.Fprintln(w, "    (none)")
	} else {
		fmt.Fprintf(w, "%7s  %8s  %7s  %9s  %9s  %s\n", "sent", "deferred", "bounced", "avg delay", "max delay", "domain")
		for _, d := range r.RecipientDomains {
			fmt.Fprintf(w, "%7d  %8d  %7d  %9s  %9s  %s\n", d.Sent, d.Deferred, d.Bounced,
				delay(d.AvgDelay, d.Sent), delay(d.MaxDelay, d.Sent), d.Domain)
		}
	}

	reasonList(w, "Rejection reasons", r.RejectReasons)
	reasonList(w, "Deferral reasons", r.DeferralReasons)
	reasonList(w, "Bounce reasons", r.BounceReasons)

	heading(w, "Upstream rejection rates by client and hour (UTC; * is the whole relay)")
	if len(r.RejectionRates) == 0 {
		fmt.Fprintln(w, "    (none)")
		return
	}
	fmt.Fprintf(w, "    %-16s  %7s  %7s  %6s  %s\n", "hour", "replies", "refused", "rate", "client")
	for _, cr := range r.RejectionRates {
		mark := ""
		if cr.Alert {
			mark = "  ALERT"
		}
		fmt.Fprintf(w, "    %-16s  %7d  %7d  %5.1f%%  %s%s\n", cr.Hour.UTC().Format("2006-01-02 15:04"),
			cr.Replies, cr.Refused, 100*cr.Rate, cr.Client, mark)
	}
}

func heading(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s\n%s\n\n", title, strings.Repeat("-", len(title)))
}

func reasonList(w io.Writer, title string, rs []Reason) {
	heading(w, title)
	if len(rs) == 0 {
		fmt.Fprintln(w, "    (none)")
		return
	}
	for _, r := range rs {
		text := r.Reason
		// pflogsumm cuts long texts too; --json has them whole.
		if rs := []rune(text); len(rs) > 100 {
			text = string(rs[:97]) + "..."
		}
		fmt.Fprintf(w, "%7d   %s\n", r.Count, text)
	}
}

// byKey lists counts by key in key order: " (connect 3, rcpt 1)".
func byKey(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// kbytes writes a byte count as pflogsumm does: as is up to 1 kB, then in
// rounded k or m.
func kbytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dm", (n+1<<19)>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dk", (n+1<<9)>>10)
	}
	return strconv.FormatInt(n, 10)
}

// delay writes seconds briefly: "1.5s", "20m0s"; "-" with no deliveries.
func delay(sec float64, n int) string {
	if n == 0 {
		return "-"
	}
	if sec < 60 {
		return strconv.FormatFloat(sec, 'f', 1, 64) + "s"
	}
	return (time.Duration(sec * float64(time.Second))).Round(time.Second).String()
}
