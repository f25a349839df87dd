package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// metricsTranscript returns the series docs/metrics.md's "After a test
// load" shows for "curl -s $A/metrics | grep '^relaykeeper_' | grep -v
// _bucket", names with their labels, in the page's order.
func metricsTranscript(t *testing.T) []string {
	t.Helper()
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(page), "| grep '^relaykeeper_' | grep -v _bucket\n")
	if !ok {
		t.Fatal("docs/metrics.md has no curl | grep '^relaykeeper_' transcript")
	}
	var shown []string
	for _, line := range strings.Split(rest, "\n") {
		if line == "..." {
			continue
		}
		name, _, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "relaykeeper_") {
			break
		}
		shown = append(shown, name)
	}
	return shown
}

// leftOut is what the page says its transcript leaves out: the
// queue-age series, the states new and claimed, and the verdict series
// between its first and last (the "..." line).
var leftOut = regexp.MustCompile(`^relaykeeper_queue_messages_by_age|state="(new|claimed)"|^relaykeeper_upstream_verdicts_total`)

// TestDocs20MetricsTranscript runs docs/metrics.md's test load (Postfix's
// smtp-sink as the smarthost, mail to example.net and gmail.com, one
// message over --size) and compares the series the relay serves with the
// page's transcript: each series shown is served, and each one served is
// shown or among those the page says it leaves out. The transcript lacked
// the three relaykeeper_alerts_total series, which the same page says are
// there at 0 from the start.
func TestDocs20MetricsTranscript(t *testing.T) {
	t.Parallel()
	shown := metricsTranscript(t)
	sink := harness.StartSink(t, harness.SinkOptions{})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-to", sink.Addr(), "--poll", "1", "--size", "100000", "--admin-http", httpAddr)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("load 1"))
	mustSend(t, r.addr(), "carol@example.org", []string{"dave@gmail.com"}, message("load 2"))
	if _, err := sendMail(r.addr(), "a@example.org", []string{"b@example.net"}, message("big")+strings.Repeat("0123456789012345678901234567890123456789\n", 3000)); err == nil {
		t.Errorf("a message over --size was accepted")
	}
	sink.WaitCount(t, 2, 30*time.Second)

	var served []string
	waitFor(20*time.Second, func() bool {
		served = served[:0]
		body := scrape(t, "http://"+httpAddr+"/metrics")
		for _, line := range strings.Split(body, "\n") {
			name, _, _ := strings.Cut(line, " ")
			if strings.HasPrefix(name, "relaykeeper_") && !strings.Contains(name, "_bucket") {
				served = append(served, name)
			}
		}
		return slices.Contains(served, `relaykeeper_deliveries_total{destination="gmail.com",result="sent"}`) &&
			slices.Contains(served, `relaykeeper_deliveries_total{destination="example.net",result="sent"}`)
	})
	for _, name := range shown {
		if !slices.Contains(served, name) {
			t.Errorf("docs/metrics.md shows %s; the relay serves no such series", name)
		}
	}
	for _, name := range served {
		if !slices.Contains(shown, name) && !leftOut.MatchString(name) {
			t.Errorf("the relay serves %s; docs/metrics.md's transcript neither shows it nor says it is left out", name)
		}
	}
}

// docSession is one "$ COMMAND" of a document's code block and the output
// shown under it.
type docSession struct {
	where, command, output string
}

// docSessions reads the "$ " command lines of a document's code blocks, a
// command running on while a quote is open, each with the lines under it
// up to the next command, a blank line or the block's end.
func docSessions(t *testing.T, file string) []docSession {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []docSession
	for i := 0; i < len(lines); i++ {
		cmd, ok := strings.CutPrefix(lines[i], "$ ")
		if !ok {
			continue
		}
		s := docSession{where: fmt.Sprintf("%s:%d", file, i+1)}
		for strings.Count(cmd, "'")%2 == 1 && i+1 < len(lines) {
			i++
			cmd += "\n" + lines[i]
		}
		s.command = cmd
		var shown []string
		for i+1 < len(lines) && lines[i+1] != "" && !strings.HasPrefix(lines[i+1], "$ ") && !strings.HasPrefix(lines[i+1], "```") {
			i++
			shown = append(shown, lines[i])
		}
		s.output = strings.Join(shown, "\n")
		out = append(out, s)
	}
	return out
}

// TestDocs20Sessions runs the documents' "$ relaykeeper ..." sessions
// whose output is the same on every machine, through sh as a reader would
// paste them, and compares what they print with what the page shows.
// auth.md showed a bad secrets file's problems each as
// "relaykeeper: FILE:LINE: ...": the relay names the switch first and
// prints the further problems as bare "FILE:LINE: ..." lines.
func TestDocs20Sessions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// "relaykeeper" on PATH is the binary under test, whatever its file's name.
	if err := os.Symlink(harness.Binary(t), filepath.Join(dir, "relaykeeper")); err != nil {
		t.Fatal(err)
	}
	secrets := writeFile(t, dir, "auth.secrets",
		"# accounts\nserver plain alice x\n\nserver plain bob a=b\n\n\n\n\nserver plain alice y\n", 0o600)
	sessions := []struct {
		file, prefix string
		paths        map[string]string // a path the page names -> the test's file
	}{
		{"auth.md", "relaykeeper --as-server --server-auth", map[string]string{"/etc/relaykeeper/auth.secrets": secrets}},
		{"auth.md", "printf '%s\\n' 'p=ss word' | relaykeeper passwd --plain", nil},
		{"auth.md", "printf '%s\\n' 'davepw' | relaykeeper passwd --md5", nil},
		{"enforce-rules.md", "relaykeeper enforce test", nil},
	}
	for _, want := range sessions {
		var found *docSession
		for _, s := range docSessions(t, want.file) {
			if strings.HasPrefix(s.command, want.prefix) {
				found = &s
				break
			}
		}
		if found == nil {
			t.Errorf("%s has no session \"$ %s...\"", want.file, want.prefix)
			continue
		}
		cmd, shown := found.command, found.output
		for from, to := range want.paths {
			cmd, shown = strings.ReplaceAll(cmd, from, to), strings.ReplaceAll(shown, from, to)
		}
		sh := exec.Command("sh", "-c", cmd)
		sh.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		got, _ := sh.CombinedOutput()
		if strings.TrimSpace(string(got)) != strings.TrimSpace(shown) {
			t.Errorf("%s: $ %s\nprints:\n%s\nthe page shows:\n%s", found.where, cmd, got, shown)
		}
	}
}

// TestDocs20QueueShowHeader stores the message docs/queue.md's "queue
// show" example shows (HELO [127.0.0.1], two recipients, --domain
// relay.example, Subject: hi) and compares the header queue show prints
// with the page's, the id and date aside. The page showed the Received
// line as "from [127.0.0.1] ([127.0.0.1])"; the relay writes Postfix's
// "(unknown [127.0.0.1])" for a client without a verified name, so a grep
// for the page's form found nothing.
func TestDocs20QueueShowHeader(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "queue.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(page), "$ relaykeeper queue show 6B025BE4A44E4CDB\n")
	block, _, _ := strings.Cut(rest, "```")
	_, shown, _ := strings.Cut(block, "\n\n")
	if !ok || shown == "" {
		t.Fatal("docs/queue.md has no queue show example with a header")
	}
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--domain", "relay.example", "--interface", "127.0.0.1", "--spool-dir", spool)
	c := mustDial(t, r.addr(), "")
	mustCmd(t, c, "250", "EHLO [127.0.0.1]")
	tx, err := c.send("alice@example.com", []string{"bob@example.net", "carol@example.org"}, "Subject: hi\n\nhello\n")
	if err != nil {
		t.Fatalf("send: %v (%+v)", err, tx)
	}
	id := queuedID(t, tx.Final)
	out, errs, code := runBinary(t, harness.Binary(t), "", "queue", "show", "--spool-dir", spool, id)
	if code != 0 {
		t.Fatalf("queue show: exit %d: %s", code, errs)
	}
	_, header, _ := strings.Cut(out, "\n\n")
	date := regexp.MustCompile(`(?m)^\t\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$`)
	norm := func(s, id string) []string {
		s = date.ReplaceAllString(strings.ReplaceAll(s, id, "ID"), "\tDATE")
		lines := strings.Split(s, "\n")
		return lines[:min(4, len(lines))] // Received (three lines), Subject
	}
	got, want := norm(header, id), norm(shown, "6B025BE4A44E4CDB")
	if !slices.Equal(got, want) {
		t.Errorf("queue show prints the header\n%s\ndocs/queue.md shows\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
