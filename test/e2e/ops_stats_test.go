package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOpsStats: a relay logging to a file (--log-file, diagnostic and mail
// log together) sees one message sent, one sent to one recipient and
// deferred once for another before going, one bounced (whose notice is
// then sent), a recipient refused (relay access) and a message refused
// (too big). `relaykeeper stats` on that file counts exactly that, in its
// text report and in its JSON, skipping the diagnostic lines.
func TestOpsStats(t *testing.T) {
	t.Parallel()
	var laterTries atomic.Int32
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"bad@example.org": {Reply: "550 5.1.1 <bad@example.org>: no such user"}},
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage == harness.StageRcpt && arg == "later@example.org" && laterTries.Add(1) == 1 {
				return harness.Response{Reply: "451 4.3.0 try later"}
			}
			return harness.Response{}
		},
	})
	logFile := filepath.Join(t.TempDir(), "relaykeeper.log")
	cfg := "mynetworks = [\"192.0.2.0/24\"]\nrelay_domains = [\"example.net\", \"example.org\"]\n"
	r := opsRelay(t, fake.Addr(), "[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n[policy]\n"+cfg,
		"--poll", "1", "--size", "2000", "--no-enforce", "--log-file", logFile)
	logged := func(event string) []*maillog.Entry {
		b, _ := os.ReadFile(logFile)
		return mailEvents(string(b), event)
	}

	mustSend(t, r.addr(), "alice@example.org", []string{"ok1@example.net"}, message("stats one"))
	mustSend(t, r.addr(), "alice@example.org", []string{"ok2@example.net", "later@example.org"}, message("stats two"))
	mustSend(t, r.addr(), "bob@Example.COM", []string{"bad@example.org"}, message("stats three"))
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"x@elsewhere.test"}, message("stats denied"))
	if err == nil || len(tx.Rcpt) != 1 || tx.Rcpt[0].String() != "554 5.7.1 <x@elsewhere.test>: Relay access denied" {
		t.Errorf("relaying to elsewhere.test: %v, RCPT %q; want 554 5.7.1 relay access denied", err, tx.Rcpt)
	}
	tx, err = sendMail(r.addr(), "alice@example.org", []string{"ok1@example.net"}, message("stats big")+strings.Repeat("0123456789abcdef\n", 200))
	const tooBig = "552 5.3.4 Maximum message size exceeded"
	if err == nil || tx.Final.String() != tooBig {
		t.Errorf("a 3 kB message with --size 2000: %v, final %q; want %q", err, tx.Final, tooBig)
	}

	// Wait until everything has happened: the deferred recipient sent,
	// the notice sent.
	done := waitFor(15*time.Second, func() bool {
		sent := 0
		for _, e := range logged("delivery") {
			if e.Get("result") == "sent" {
				sent++
			}
		}
		return sent == 4
	})
	if !done {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("not 4 sent deliveries within 15s; log:\n%s", b)
	}
	r.stop(15 * time.Second)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var lines, skipped int
	var bytes, aliceBytes, bobBytes int64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		lines++
		if strings.HasPrefix(l, "time=") {
			skipped++
		}
	}
	for _, e := range logged("accept") {
		n, _ := strconv.ParseInt(e.Get("size"), 10, 64)
		bytes += n
		if e.Get("from") == "<alice@example.org>" {
			aliceBytes += n
		} else {
			bobBytes += n
		}
	}
	if skipped == 0 || len(logged("accept")) != 3 || len(logged("notice")) != 1 {
		t.Fatalf("log file: %d diagnostic lines, %d accept lines, %d notice lines; want some, 3, 1:\n%s",
			skipped, len(logged("accept")), len(logged("notice")), b)
	}

	// JSON.
	out, errOut, code := opsCmd(t, "", "stats", "--json", logFile)
	var rep struct {
		Lines       int `json:"lines"`
		Skipped     int `json:"skipped"`
		OtherEvents int `json:"other_events"`
		Connections int `json:"connections"`
		Received    struct {
			Messages int   `json:"messages"`
			Bytes    int64 `json:"bytes"`
		} `json:"received"`
		Delivered struct{ Messages, Recipients int } `json:"delivered"`
		Deferred  struct{ Messages, Deferrals int }  `json:"deferred"`
		Bounced   struct{ Messages, Recipients int } `json:"bounced"`
		Rejected  struct {
			Total   int            `json:"total"`
			ByStage map[string]int `json:"by_stage"`
		} `json:"rejected"`
		Proxied struct {
			Total int `json:"total"`
		} `json:"proxied"`
		Quarantined int `json:"quarantined"`
		Hours       []struct {
			Received, Delivered, Deferred, Bounced, Rejected int
		} `json:"hours"`
		Senders []struct {
			Sender   string `json:"sender"`
			Messages int    `json:"messages"`
			Bytes    int64  `json:"bytes"`
		} `json:"senders"`
		RecipientDomains []struct {
			Domain                  string
			Sent, Deferred, Bounced int
		} `json:"recipient_domains"`
		RejectReasons []struct {
			Reason string
			Count  int
		} `json:"reject_reasons"`
		DeferralReasons []struct {
			Reason string
			Count  int
		} `json:"deferral_reasons"`
		BounceReasons []struct {
			Reason string
			Count  int
		} `json:"bounce_reasons"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("stats --json: exit %d\n%s%s", code, out, errOut)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("stats --json %s: %v; want %v", what, got, want)
		}
	}
	check("lines", rep.Lines, lines)
	check("skipped", rep.Skipped, skipped)
	check("other_events (the notice line)", rep.OtherEvents, 1)
	check("connections", rep.Connections, 5)
	check("received", rep.Received, fmt.Sprintf("{3 %d}", bytes))
	check("delivered (m1, m2, the notice; 4 recipients)", rep.Delivered, "{3 4}")
	check("deferred", rep.Deferred, "{1 1}")
	check("bounced", rep.Bounced, "{1 1}")
	check("rejected", rep.Rejected.Total, 2)
	check("rejected by stage", rep.Rejected.ByStage, map[string]int{"data": 1, "rcpt": 1})
	check("proxied", rep.Proxied.Total, 0)
	check("quarantined", rep.Quarantined, 0)
	var sum [5]int
	for _, h := range rep.Hours {
		sum[0] += h.Received
		sum[1] += h.Delivered
		sum[2] += h.Deferred
		sum[3] += h.Bounced
		sum[4] += h.Rejected
	}
	check("hours (received, delivered, deferred, bounced, rejected)", sum, [5]int{3, 4, 1, 1, 2})
	check("senders", rep.Senders, fmt.Sprintf("[{alice@example.org 2 %d} {bob@example.com 1 %d}]", aliceBytes, bobBytes))
	domains := map[string]string{}
	for _, d := range rep.RecipientDomains {
		domains[d.Domain] = fmt.Sprint(d.Sent, d.Deferred, d.Bounced)
	}
	check("recipient domains (sent deferred bounced)", domains,
		map[string]string{"example.net": "2 0 0", "example.org": "1 1 1", "example.com": "1 0 0"})
	reasons := func(rs []struct {
		Reason string
		Count  int
	}) []string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%d %s", r.Count, r.Reason))
		}
		slices.Sort(s)
		return s
	}
	check("reject reasons", reasons(rep.RejectReasons),
		[]string{"1 " + tooBig, "1 554 5.7.1 <ADDR>: Relay access denied"})
	check("deferral reasons", reasons(rep.DeferralReasons), []string{"1 451 4.3.0 try later"})
	check("bounce reasons", reasons(rep.BounceReasons), []string{"1 550 5.1.1 <ADDR>: no such user"})

	// The text report's grand totals.
	out, errOut, code = opsCmd(t, "", "stats", logFile)
	want := fmt.Sprintf(`Grand Totals
------------

      3   received (%d bytes)
      3   delivered (4 recipients)
      1   deferred (1 deferral)
      1   bounced (1 recipient)
      2   rejected (data 1, rcpt 1)
      0   proxied
      0   held
      0   discarded
      0   quarantined
      5   connections

%7d   lines read, %d skipped (not mail-log lines), 1 event not counted above
`, bytes, lines, skipped)
	if code != 0 || !strings.Contains(out, "\n"+want+"\n") {
		t.Errorf("stats: exit %d\n%s%s\nwant the grand totals\n%s", code, out, errOut, want)
	}
}
