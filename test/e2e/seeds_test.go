package e2e

// The command lines of README.md's table, each run as written, with a free
// port and a temporary spool added.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

var swaksQueued = regexp.MustCompile(`(?m)^<-  250 2\.0\.0 OK: queued as ([0-9A-F]{16})\r?$`)

// spoolMessages stores n messages in spool with a store-only relay, which
// it then stops, and returns their ids.
func spoolMessages(t *testing.T, spool string, n int) []string {
	t.Helper()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool)
	var ids []string
	for i := range n {
		tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("stored %d", i)))
		ids = append(ids, queuedID(t, tx.Final))
	}
	r.stop(15 * time.Second)
	slices.Sort(ids)
	return ids
}

// runClient runs relaykeeper --as-client to the end and returns its exit
// status, standard output and the process.
func runClient(t *testing.T, args ...string) (int, string, *harness.Proc) {
	t.Helper()
	p := harness.Start(t, harness.Binary(t), args...)
	code, err := p.Wait(60 * time.Second)
	if err != nil {
		t.Fatalf("relaykeeper %v: %v; stderr:\n%s", args, err, p.Stderr())
	}
	return code, p.Stdout(), p
}

// summary checks that out is one line and returns it.
func summary(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("--as-client printed %q; want exactly one line", out)
	}
	return lines[0]
}

// count returns the number before word in a summary line ("3 delivered").
func count(line, word string) int {
	m := regexp.MustCompile(`(\d+) ` + word).FindStringSubmatch(line)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestSeedServerThenClient: "--as-server --port P --spool-dir D" stores
// three messages and forwards none; "--as-client SINK --spool-dir D" then
// delivers all three and empties the spool.
func TestSeedServerThenClient(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	sink := harness.StartSink(t, harness.SinkOptions{})
	// The seed line as written: no --interface, so it listens everywhere;
	// the test talks to it on 127.0.0.1 only.
	r := startRelay(t, "127.0.0.1", "--as-server", "--spool-dir", spool)

	subjects := map[string]string{} // id -> Subject
	for i := 1; i <= 3; i++ {
		subj := fmt.Sprintf("seed %d", i)
		out, code := harness.Swaks(t, "--server", r.addr(), "--helo", "swaks.e2e.test",
			"--from", "alice@example.org", "--to", "bob@example.net,carol@example.net",
			"--header", "Subject: "+subj)
		m := swaksQueued.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("swaks: exit %d, no \"250 2.0.0 OK: queued as ID\"; output:\n%s", code, out)
		}
		subjects[m[1]] = subj
	}

	files := spoolFiles(t, spool)
	ready := idsIn(files, "content", "envelope")
	if len(files) != 3 || len(ready) != 3 {
		t.Fatalf("spool = %v; want 3 messages, each .content + .envelope", files)
	}
	for _, id := range ready {
		if _, ok := subjects[id]; !ok {
			t.Errorf("spool holds %s, which no client was told about (told: %v)", id, subjects)
		}
		env := readEnvelope(t, spool+"/"+id+".envelope")
		if got, want := env.all("X-MailRelay-To-Remote"), []string{"bob@example.net", "carol@example.net"}; !slices.Equal(got, want) {
			t.Errorf("%s: To-Remote = %q; want %q", id, got, want)
		}
		if got := env.get("X-MailRelay-From"); got != "alice@example.org" {
			t.Errorf("%s: From = %q; want alice@example.org", id, got)
		}
	}
	if n := len(r.events("accept")); n != 3 {
		t.Errorf("mail log has %d accept lines; want 3", n)
	}
	r.stop(15 * time.Second)
	if n := len(r.events("delivery")); n != 0 || sink.Count() != 0 {
		t.Errorf("store-only server: %d delivery lines, sink has %d; want 0 and 0", n, sink.Count())
	}

	code, out, p := runClient(t, "--as-client", sink.Addr(), "--spool-dir", spool)
	line := summary(t, out)
	if code != 0 || count(line, "delivered") != 3 || count(line, "deferred") != 0 || count(line, "failed") != 0 {
		t.Errorf("--as-client: exit %d, summary %q; want exit 0 and 3 delivered, 0 deferred, 0 failed", code, line)
	}
	if n := len(mailEvents(p.Stderr(), "delivery")); n != 6 {
		t.Errorf("--as-client logged %d delivery lines; want 6 (3 messages x 2 recipients)", n)
	}
	msgs := sink.Messages()
	if len(msgs) != 3 {
		t.Fatalf("sink has %d messages; want 3", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.From != "alice@example.org" || !slices.Equal(m.To, []string{"bob@example.net", "carol@example.net"}) {
			t.Errorf("sink message from %q to %q; want alice@example.org to [bob@example.net carol@example.net]", m.From, m.To)
		}
		id := receivedID(m.Data)
		subj, ok := subjects[id]
		if !ok {
			t.Errorf("sink message's first header is not relaykeeper's Received with a known id:\n%s", head(m.Data))
			continue
		}
		if !strings.HasPrefix(m.Data, "Received: from swaks.e2e.test (unknown [127.0.0.1])\n") {
			t.Errorf("Received header = %q; want it to start %q", head(m.Data), "Received: from swaks.e2e.test (unknown [127.0.0.1])")
		}
		if !strings.Contains(m.Data, "\nSubject: "+subj+"\n") {
			t.Errorf("message %s at the sink lacks Subject %q", id, subj)
		}
		if seen[id] {
			t.Errorf("message %s reached the sink twice", id)
		}
		seen[id] = true
	}
	checkSpoolEmpty(t, spool)
}

var receivedRE = regexp.MustCompile(`^Received: from [^\n]*\n\tby \S+ \(relaykeeper\) with ESMTP id ([0-9A-F]{16})`)

// receivedID returns the id in relaykeeper's Received header at the top of
// data ("\n" line endings, as smtp-sink dumps it), or "".
func receivedID(data string) string {
	m := receivedRE.FindStringSubmatch(data)
	if m == nil {
		return ""
	}
	return m[1]
}

func head(data string) string {
	if i := strings.Index(data, "\n\n"); i >= 0 {
		return data[:i]
	}
	return data
}

// TestSeedClientCannotDeliver: --as-client to an upstream that is not
// there exits 1, says so on its one line, and leaves every message ready.
func TestSeedClientCannotDeliver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		upstream func(t *testing.T) string
	}{
		{"nothing listens", func(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)) }},
		{"unresolvable host:smtp", func(*testing.T) string { return "nonexistent.invalid:smtp" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spool := t.TempDir()
			ids := spoolMessages(t, spool, 2)
			upstream := tt.upstream(t)
			code, out, p := runClient(t, "--as-client", upstream, "--spool-dir", spool)
			line := summary(t, out)
			t.Logf("--as-client %s: exit %d, %q", upstream, code, line)
			if code != 1 || count(line, "delivered") != 0 || !strings.Contains(line, "2 message(s)") {
				t.Errorf("--as-client %s: exit %d, summary %q; want exit 1, 2 message(s), 0 delivered", upstream, code, line)
			}
			if strings.Contains(p.Stderr(), "panic") || strings.Contains(p.Stderr(), "goroutine ") {
				t.Errorf("--as-client %s crashed:\n%s", upstream, p.Stderr())
			}
			files := spoolFiles(t, spool)
			if got := idsIn(files, "content", "envelope"); !slices.Equal(got, ids) {
				t.Errorf("spool after failed --as-client = %v; want %v ready (.content + .envelope)", files, ids)
			}
		})
	}
}

// TestSeedPoll: "--as-server --poll 3600 --forward-to SINK" keeps messages
// stored; with --poll 1 they reach the sink within seconds.
func TestSeedPoll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		poll    string
		forward bool
	}{
		{"3600", false},
		{"1", true},
	}
	for _, tt := range tests {
		t.Run("poll="+tt.poll, func(t *testing.T) {
			t.Parallel()
			spool := t.TempDir()
			sink := harness.StartSink(t, harness.SinkOptions{})
			r := startRelay(t, "127.0.0.1", "--as-server", "--poll", tt.poll, "--forward-to", sink.Addr(),
				"--interface", "127.0.0.1", "--spool-dir", spool)
			for i := range 2 {
				mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("poll %d", i)))
			}
			if !tt.forward {
				time.Sleep(2 * time.Second)
				if n := sink.Count(); n != 0 {
					t.Errorf("--poll %s: sink has %d messages after 2s; want 0", tt.poll, n)
				}
				if got := idsIn(spoolFiles(t, spool), "content", "envelope"); len(got) != 2 {
					t.Errorf("--poll %s: %d ready messages in the spool; want 2", tt.poll, len(got))
				}
				return
			}
			sink.WaitCount(t, 2, 10*time.Second)
			waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
			if n := len(deliveries(r.events("delivery"), "bob@example.net", "sent")); n != 2 {
				t.Errorf("mail log has %d sent deliveries; want 2", n)
			}
		})
	}
}

// TestSeedForwardOnDisconnect: --poll 0 and --forward-on-disconnect
// forward when the client disconnects, not before; the smarthost may be a
// host name (localhost).
func TestSeedForwardOnDisconnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		trigger  []string
		hostname bool
	}{
		{"poll 0", []string{"--poll", "0"}, false},
		{"forward-on-disconnect", []string{"--forward-on-disconnect"}, false},
		{"forward-to localhost", []string{"--forward-on-disconnect"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spool := t.TempDir()
			sink := harness.StartSink(t, harness.SinkOptions{})
			to := sink.Addr()
			if tt.hostname {
				to = strings.Replace(to, "127.0.0.1", "localhost", 1)
			}
			args := append([]string{"--as-server", "--forward-to", to, "--interface", "127.0.0.1", "--spool-dir", spool}, tt.trigger...)
			r := startRelay(t, "127.0.0.1", args...)

			c, greet, err := dialSMTP(r.addr())
			if err != nil {
				t.Fatalf("connect: %v (%q)", err, greet)
			}
			defer c.Close()
			c.cmd("EHLO client.e2e.test")
			tx, err := c.send("alice@example.org", []string{"bob@example.net"}, message("on disconnect"))
			if err != nil {
				t.Fatalf("send: %v; %+v", err, tx)
			}
			time.Sleep(1500 * time.Millisecond)
			if n := sink.Count(); n != 0 {
				t.Errorf("sink has %d messages while the client is still connected; want 0", n)
			}
			c.cmd("QUIT")
			c.Close()
			sink.WaitCount(t, 1, 5*time.Second)
			m := sink.Messages()[0]
			if m.From != "alice@example.org" || !slices.Equal(m.To, []string{"bob@example.net"}) {
				t.Errorf("sink got from %q to %q; want alice@example.org to [bob@example.net]", m.From, m.To)
			}
			e := r.waitEvent("delivery", 5*time.Second, nil)
			if e.Get("result") != "sent" || e.Get("to") != "<bob@example.net>" {
				t.Errorf("delivery line: result=%s to=%s; want sent to <bob@example.net>", e.Get("result"), e.Get("to"))
			}
			waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
		})
	}
}

// TestSeedMailqPipeline: the Postfix guide's
//
//	mailq -bp | grep 'Connection refused' -B1 | grep -E '^[0-9A-Z]' | cut -d' ' -f1 | postsuper -d -
//
// with relaykeeper queue for mailq and postsuper, deletes the messages
// deferred because the upstream refused the connection, and only those.
func TestSeedMailqPipeline(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	ids := spoolMessages(t, spool, 3)
	bin := harness.Binary(t)
	if _, errOut, code := opsCmd(t, "", "queue", "hold", ids[2], "--spool-dir", spool); code != 0 {
		t.Fatalf("queue hold %s: exit %d: %s", ids[2], code, errOut)
	}
	runClient(t, "--as-client", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), "--spool-dir", spool)

	pipeline := fmt.Sprintf(`%[1]s queue --spool-dir %[2]s | grep 'Connection refused' -B1 | grep -E '^[0-9A-Z]' | cut -d' ' -f1 | %[1]s queue delete --spool-dir %[2]s -`, bin, spool)
	out, errOut, code := runBinary(t, "bash", "", "-c", pipeline)
	t.Logf("pipeline: exit %d\n%s%s", code, out, errOut)
	if code != 0 || strings.Count(out, ": deleted (was ready)") != 2 {
		t.Errorf("the guide's pipeline: exit %d, output:\n%s%s\nwant both refused messages deleted", code, out, errOut)
	}
	if got := idsIn(spoolFiles(t, spool), "content", "envelope.held"); !slices.Equal(got, ids[2:]) {
		t.Errorf("left in the spool: %v; want only the held %s", spoolFiles(t, spool), ids[2])
	}
}

// TestSeedDeleteAllDeferred: the Postfix guide's "postsuper -d ALL
// deferred" is "relaykeeper queue delete --all --state ready" (deferred
// mail is ready, waiting for its next attempt); held and failed messages
// stay. --state alone selects the same.
func TestSeedDeleteAllDeferred(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	ids := spoolMessages(t, spool, 4)
	if _, errOut, code := opsCmd(t, "", "queue", "hold", ids[3], "--spool-dir", spool); code != 0 {
		t.Fatalf("queue hold %s: exit %d: %s", ids[3], code, errOut)
	}
	out, errOut, code := opsCmd(t, "", "queue", "delete", "--all", "--state", "ready", "--spool-dir", spool)
	if code != 0 || strings.Count(out, ": deleted (was ready)") != 3 {
		t.Errorf("queue delete --all --state ready: exit %d\n%s%s\nwant the three ready messages deleted", code, out, errOut)
	}
	if got := idsIn(spoolFiles(t, spool), "content", "envelope.held"); !slices.Equal(got, ids[3:]) {
		t.Errorf("left in the spool: %v; want only the held %s", spoolFiles(t, spool), ids[3])
	}
	out, errOut, code = opsCmd(t, "", "queue", "release", "--state", "held", "--spool-dir", spool)
	if code != 0 || !strings.Contains(out, ids[3]+": released") {
		t.Errorf("queue release --state held: exit %d\n%s%s\nwant %s released", code, out, errOut, ids[3])
	}
	if _, errOut, code := opsCmd(t, "", "queue", "delete", ids[3], "--state", "ready", "--spool-dir", spool); code != 2 {
		t.Errorf("queue delete ID --state ready: exit %d (%s); want 2, ids and a selection together", code, errOut)
	}
}
