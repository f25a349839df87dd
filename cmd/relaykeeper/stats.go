package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/stats"
)

const statsUsage = `usage: relaykeeper stats [--top N] [--json] [LOGFILE...]

Summarises the mail log, as pflogsumm does for Postfix: messages received,
delivered, deferred, bounced, rejected, proxied and quarantined; traffic by
hour of the day; the top senders, recipient domains, and reasons for
rejections, deferrals and bounces; and the upstream's rejection rate per
client and per hour, marked ALERT over 2% of at least 20 replies.

Reads the LOGFILEs in turn (gzip-compressed ones too), or the standard input
when there are none or for "-". Lines that are not mail-log lines, such as
the diagnostic log's "time=... level=..." lines, are skipped and counted.

      --top N    entries in each top list (default 10)
      --json     machine-readable output
`

// runStats is "relaykeeper stats": it summarises mail logs and returns the
// exit status.
func runStats(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper stats", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	topText := fs.String("top", "10", "")
	asJSON := fs.Bool("json", false, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper stats: %s (see relaykeeper stats --help)\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return usage("%v", err)
	}
	if *help {
		io.WriteString(stdout, statsUsage)
		return exitOK
	}
	top, err := strconv.Atoi(*topText)
	if err != nil || top < 1 {
		return usage("--top %q: want a number of at least 1", *topText)
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	a := stats.NewAggregator()
	for _, name := range files {
		if err := readMailLog(a, name, stdin); err != nil {
			fmt.Fprintf(stderr, "relaykeeper stats: %v\n", err)
			return exitFailure
		}
	}
	rep := a.Report(top)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false) // addresses keep their <>
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return exitOK
	}
	writeStatsText(stdout, rep)
	return exitOK
}

// readMailLog adds one file ("-": stdin) to a, uncompressing it if it is
// gzip's, as logrotate leaves old logs.
func readMailLog(a *stats.Aggregator, name string, stdin io.Reader) error {
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

// writeStatsText prints the report as pflogsumm lays its out: grand totals,
// the per-hour table, then the top lists.
func writeStatsText(w io.Writer, r *stats.Report) {
	if r.First.IsZero() {
		fmt.Fprintln(w, "relaykeeper mail log summary: no mail-log lines")
	} else {
		fmt.Fprintf(w, "relaykeeper mail log summary: %s to %s UTC\n",
			r.First.UTC().Format(queue.TimeFormat), r.Last.UTC().Format(queue.TimeFormat))
	}

	heading(w, "Grand Totals")
	count := func(n int, what string) { fmt.Fprintf(w, "%7d   %s\n", n, what) }
	count(r.Received.Messages, fmt.Sprintf("received (%d bytes)", r.Received.Bytes))
	count(r.Delivered.Messages, fmt.Sprintf("delivered (%s)", plural(r.Delivered.Recipients, "recipient")))
	count(r.Deferred.Messages, fmt.Sprintf("deferred (%s)", plural(r.Deferred.Deferrals, "deferral")))
	count(r.Bounced.Messages, fmt.Sprintf("bounced (%s)", plural(r.Bounced.Recipients, "recipient")))
	count(r.Rejected.Total, "rejected"+byKey(r.Rejected.ByStage))
	count(r.Proxied.Total, "proxied"+byKey(r.Proxied.ByResult))
	count(r.Quarantined, "quarantined")
	count(r.Connections, "connections")
	fmt.Fprintln(w)
	other := ""
	if r.OtherEvents > 0 {
		other = fmt.Sprintf(", %d of events not counted here", r.OtherEvents)
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

	reasons(w, "Rejection reasons", r.RejectReasons)
	reasons(w, "Deferral reasons", r.DeferralReasons)
	reasons(w, "Bounce reasons", r.BounceReasons)

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

func reasons(w io.Writer, title string, rs []stats.Reason) {
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
