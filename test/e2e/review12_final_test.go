package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Review 12, final round: several destinations with their own limits and
// a dead one, the runtime memory limit's configuration and a crowd of
// slow clients, and the proxy's upstream session pool.

// r12Listing is "queue list --json".
type r12Listing struct {
	Messages []struct {
		ID          string    `json:"id"`
		State       string    `json:"state"`
		Sender      string    `json:"sender"`
		Attempts    int       `json:"attempts"`
		NextAttempt time.Time `json:"next_attempt"`
		Recipients  []struct {
			Addr   string `json:"addr"`
			Status string `json:"status"`
		} `json:"recipients"`
	} `json:"messages"`
}

// r12Routes starts a relay whose transport_maps send a.test and b.test to
// two live next hops (concurrency 1 and 2) and dead.test to a port where
// nothing listens.
func r12Routes(t *testing.T, extra ...string) (r *relay, a, b *harness.FakeSMTP, dead string) {
	t.Helper()
	// hop_a takes a while over each message, so that its one session is
	// often busy.
	a = harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, _ string) harness.Response {
		if st == harness.StageEndOfData {
			return harness.Response{Delay: 300 * time.Millisecond}
		}
		return harness.Response{}
	}})
	b = harness.NewFakeSMTP(t, harness.Script{})
	r, dead = r12RoutesTo(t, a.Addr(), b.Addr(), extra...)
	return r, a, b, dead
}

// r12RoutesTo is r12Routes with the live next hops given.
func r12RoutesTo(t *testing.T, aAddr, bAddr string, extra ...string) (r *relay, dead string) {
	t.Helper()
	dead = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)) // nothing listens: connection refused
	dir := t.TempDir()
	transport := filepath.Join(dir, "transport")
	os.WriteFile(transport, []byte("a.test hop_a:\nb.test hop_b:\ndead.test hop_dead:\n"), 0o644)
	cfg := filepath.Join(dir, "relaykeeper.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[delivery]
connections = 4
minimal_backoff_time = "60s"

[routing]
transport_maps = ["texthash:%s"]

[transports.hop_a]
nexthop = "[%s]:%s"
destination_concurrency_limit = 1

[transports.hop_b]
nexthop = "[%s]:%s"
destination_concurrency_limit = 2

[transports.hop_dead]
nexthop = "[%s]:%s"
destination_concurrency_limit = 3
`, transport, hostOf(aAddr), portOf(aAddr), hostOf(bAddr), portOf(bAddr), hostOf(dead), portOf(dead))), 0o644)
	args := append([]string{"--as-server", "--forward-to", "127.0.0.1:9", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir()}, extra...)
	return startRelay(t, "127.0.0.1", args...), dead
}

// acceptedTo counts the accepted transactions of a fake that carried rcpt.
func acceptedTo(f *harness.FakeSMTP, from, rcpt string) int {
	n := 0
	for _, tx := range f.Transactions() {
		if tx.MailFrom != from || !tx.Accepted() {
			continue
		}
		for _, to := range tx.To() {
			if to == rcpt {
				n++
			}
		}
	}
	return n
}

// TestReview12FinalDeadDestination: a destination that refuses
// connections backs off while mail to two live destinations flows, also
// the live half of messages whose first recipient is at the dead one
// (sent after the dead one is known dead); each live recipient gets its
// message once; queue list shows the dead recipients deferred with a next
// attempt about a minimal back-off (60 s) after their failure.
func TestReview12FinalDeadDestination(t *testing.T) {
	t.Parallel()
	r, a, b, _ := r12Routes(t, "--forward-on-disconnect", "--poll", "1")
	mustSend(t, r.addr(), "first@example.org", []string{"x@dead.test"}, message("dead first"))
	first := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<x@dead.test>" })
	if res := first.Get("result"); res != "deferred" {
		t.Fatalf("first delivery to the dead destination: %v; want deferred", first.Fields)
	}
	// The dead destination is known dead now. Mixed messages, the dead
	// recipient first or last, and plain ones to the live destinations.
	type sent struct {
		from, id string
		to       []string
	}
	var msgs []sent
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	for i, to := range [][]string{
		{"x@dead.test", "y@a.test"},
		{"y@b.test", "x@dead.test"},
		{"x@dead.test", "y@a.test", "z@b.test"},
		{"p@a.test"}, {"q@a.test"}, {"r@a.test"},
		{"p@b.test"}, {"q@b.test"}, {"r@b.test"},
	} {
		from := fmt.Sprintf("m%d@example.org", i)
		tx, err := c.send(from, to, message(fmt.Sprintf("dest %d", i)))
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		msgs = append(msgs, sent{from, queuedID(t, tx.Final), to})
	}
	c.cmd("QUIT")
	c.Close()
	live := func(rcpt string) *harness.FakeSMTP {
		switch {
		case strings.HasSuffix(rcpt, "@a.test"):
			return a
		case strings.HasSuffix(rcpt, "@b.test"):
			return b
		}
		return nil
	}
	allLive := func() bool {
		for _, m := range msgs {
			for _, to := range m.to {
				if f := live(to); f != nil && acceptedTo(f, m.from, to) == 0 {
					return false
				}
			}
		}
		return true
	}
	if !waitFor(12*time.Second, allLive) {
		for _, m := range msgs {
			for _, to := range m.to {
				if f := live(to); f != nil && acceptedTo(f, m.from, to) == 0 {
					t.Errorf("%s (%s) to %s: not delivered while %s is dead", m.from, m.id, to, "dead.test")
				}
			}
		}
		out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", r.spool)
		t.Fatalf("queue:\n%s\nstderr:\n%s", out, r.stderr())
	}
	time.Sleep(2500 * time.Millisecond) // poll ticks: nothing goes twice
	for _, m := range msgs {
		for _, to := range m.to {
			if f := live(to); f != nil {
				if n := acceptedTo(f, m.from, to); n != 1 {
					t.Errorf("%s (%s) to %s: delivered %d times; want once", m.from, m.id, to, n)
				}
			}
		}
	}
	// Each message was tried at the dead destination once at most: its
	// back-off is 60 s, and a busy live destination is no failure.
	for _, e := range deliveries(r.events("delivery"), "<x@dead.test>", "") {
		if e.Get("attempt") != "1" {
			t.Errorf("delivery %v: a further attempt at the dead destination within seconds; want none before minimal_backoff_time (60 s)", e.Fields)
		}
	}
	out, _, _ := opsCmd(t, "", "queue", "list", "--json", "--spool-dir", r.spool)
	var l r12Listing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("queue list --json: %v %q", err, out)
	}
	wantDead := map[string]bool{"first@example.org": true, msgs[0].from: true, msgs[1].from: true, msgs[2].from: true}
	now := time.Now()
	for _, m := range l.Messages {
		if !wantDead[m.Sender] {
			t.Errorf("queue list shows %s from %s (%s); want only the dead destination's messages", m.ID, m.Sender, m.State)
			continue
		}
		delete(wantDead, m.Sender)
		if m.Attempts != 1 {
			t.Errorf("%s from %s: %d attempts; want 1", m.ID, m.Sender, m.Attempts)
		}
		if m.NextAttempt.IsZero() || m.NextAttempt.Before(now.Add(30*time.Second)) || m.NextAttempt.After(now.Add(61*time.Second)) {
			t.Errorf("%s from %s: next attempt %v (in %v); want about 60 s after its failure", m.ID, m.Sender, m.NextAttempt, m.NextAttempt.Sub(now))
		}
		for _, rc := range m.Recipients {
			want := "sent"
			if strings.HasSuffix(rc.Addr, "@dead.test") {
				want = "deferred"
			}
			if rc.Status != want {
				t.Errorf("%s from %s: recipient %s is %q; want %q", m.ID, m.Sender, rc.Addr, rc.Status, want)
			}
		}
	}
	for s := range wantDead {
		t.Errorf("queue list lacks the message from %s; output %s", s, out)
	}
}

// r12CPU is a process's user and system CPU time, from /proc.
func r12CPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var u, k int64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &k)
	return time.Duration(u+k) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// TestReview12FinalSlowloris: 200 clients in the middle of DATA, each
// sending a few bytes a second, with the default memory limit (16 MiB plus
// 100 KiB a session): the relay does not crash, its CPU stays bounded (no
// garbage collection without pause), and a good message from another
// client is accepted and forwarded while they trickle; the trickled
// messages that end are accepted too.
func TestReview12FinalSlowloris(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "[policy]\nmax_connections_per_ip = 1000\n"),
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	pid := r.current().PID()
	const n = 200
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp4", r.addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "EHLO slow%d.e2e.test\r\nMAIL FROM:<slow%d@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n", i, i)
	}
	// Each reads its replies up to the 354 (PIPELINING).
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		br := newReader(c)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("client %d before 354: %v; stderr:\n%s", i, err, r.stderr())
			}
			if strings.HasPrefix(l, "354") {
				break
			}
			if l[0] != '2' {
				t.Fatalf("client %d: %q", i, l)
			}
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a line of 64 bytes in 8-byte pieces, every 100 ms, round robin
		defer close(done)
		piece := []byte("X-Slow: ")
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write(piece)
			}
			piece = []byte("abcdefg\n")
		}
	}()
	time.Sleep(time.Second)
	cpu0, t0 := r12CPU(t, pid), time.Now()
	time.Sleep(4 * time.Second)
	cpu, wall := r12CPU(t, pid)-cpu0, time.Since(t0)
	rss := r12Status(t, pid, "VmRSS")
	t.Logf("200 slow clients: relay CPU %v in %v, RSS %d KiB", cpu, wall.Round(time.Millisecond), rss)
	if cpu > wall/2 {
		t.Errorf("relay used %v of CPU in %v with 200 slow clients; want well under half a core", cpu, wall)
	}
	if rss > 256<<10 {
		t.Errorf("relay RSS %d KiB with 200 slow clients; want under 256 MiB", rss)
	}
	mustSend(t, r.addr(), "good@example.org", []string{"bob@example.net"}, message("good among slow"))
	if !waitFor(10*time.Second, func() bool { return acceptedFrom(up, "good@example.org") == 1 }) {
		t.Fatalf("the good message was not forwarded while 200 clients trickle; stderr:\n%s", r.stderr())
	}
	close(stop)
	<-done
	// The slow messages end; each gets its 250.
	ok := 0
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(15 * time.Second))
		if _, err := c.Write([]byte("\r\n.\r\n")); err != nil {
			t.Errorf("client %d: %v", i, err)
			continue
		}
		l, err := newReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "250 ") {
			t.Errorf("client %d after the final dot: %q %v", i, l, err)
			continue
		}
		ok++
	}
	if !r.current().Running() {
		t.Fatalf("relay exited; stderr:\n%s", r.stderr())
	}
	t.Logf("%d of %d slow messages accepted", ok, n)
}

// TestReview12FinalProxyEhloChanges: the upstream offers SMTPUTF8 and
// 8BITMIME on its first connection and not on the later ones (a server
// replaced behind the same address). The proxy never sends a MAIL
// parameter that the upstream session it uses did not offer: it answers
// the client itself (or uses a session that offers it).
func TestReview12FinalProxyEhloChanges(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	up.mu.Lock()
	up.dotClose = true // a new upstream session for each message
	up.ehlo = func(conn int) []string {
		if conn == 1 {
			return []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 0"}
		}
		return []string{"PIPELINING", "SIZE 100000"}
	}
	up.mu.Unlock()
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for i := range 3 {
		c := mustDial(t, r.addr(), "127.0.0.1")
		ehlo := mustCmd(t, c, "250", "EHLO client.e2e.test")
		from := fmt.Sprintf("ascii%d@example.org", i)
		params := ""
		if strings.Contains(ehlo.String(), "8BITMIME") {
			params += " BODY=8BITMIME"
		}
		if strings.Contains(ehlo.String(), "SMTPUTF8") && i < 2 { // the third only 8-bit
			from = fmt.Sprintf("jürgen%d@example.org", i)
			params += " SMTPUTF8"
		}
		rep, _ := c.cmd("MAIL FROM:<%s>%s", from, params)
		if rep.code() == 250 {
			rep, _ = c.cmd("RCPT TO:<bob@example.net>")
		}
		if rep.code() == 250 {
			rep, _ = c.cmd("DATA")
		}
		if rep.code() == 354 {
			rep, _ = c.cmd("%s", "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n.")
		}
		t.Logf("client %d: EHLO %q, MAIL ... %q: last reply %q", i, ehlo, params, rep)
		c.cmd("QUIT")
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	for conn, lines := range up.connLines() {
		var offered []string
		if up.ehlo != nil {
			offered = up.ehlo(conn)
		}
		has := func(ext string) bool {
			for _, o := range offered {
				if strings.HasPrefix(o, ext) {
					return true
				}
			}
			return false
		}
		for _, l := range lines {
			u := strings.ToUpper(l)
			if !strings.HasPrefix(u, "MAIL ") {
				continue
			}
			for _, p := range []struct{ param, ext string }{{" SMTPUTF8", "SMTPUTF8"}, {" BODY=8BITMIME", "8BITMIME"}, {" SIZE=", "SIZE"}} {
				if strings.Contains(u, p.param) && !has(p.ext) {
					t.Errorf("upstream connection %d (offering %q) got %q: %s was not offered", conn, offered, l, p.ext)
				}
			}
		}
	}
}

// TestReview12FinalProxyPoolTLSAuth: the upstream (relaykeeper itself)
// requires STARTTLS and then AUTH with the relay's own credentials.
// Client sessions one after the other, each with RSET and a second
// transaction, go through the proxy's pooled upstream sessions: every
// message is accepted upstream over TLS and logged in, exactly once, and
// each client hears the upstream's own reply to its message.
func TestReview12FinalProxyPoolTLSAuth(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	up, pem := authUpstream(t, sink)
	r := startGmailProxy(t, up.addr(), "alice@rk.test", "app-password-1", pem)
	heard := map[string]string{} // sender -> upstream id the client heard
	for i := range 4 {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client%d.e2e.test", i)
		// An abandoned transaction first.
		mustCmd(t, c, "250", "MAIL FROM:<abandoned%d@example.org>", i)
		mustCmd(t, c, "250", "RCPT TO:<%s>", outsideRcpt)
		mustCmd(t, c, "250", "RSET")
		for k := range 2 {
			from := fmt.Sprintf("c%d-m%d@example.org", i, k)
			mustCmd(t, c, "250", "MAIL FROM:<%s>", from)
			mustCmd(t, c, "250", "RCPT TO:<%s>", outsideRcpt)
			mustCmd(t, c, "354", "DATA")
			rep := mustCmd(t, c, "250", "%s", "Subject: pool "+from+"\r\n\r\nfrom "+from+"\r\n.")
			heard[from] = queuedID(t, rep)
			if k == 0 {
				mustCmd(t, c, "250", "RSET")
			}
		}
		if i%2 == 0 {
			c.cmd("QUIT")
		}
		c.Close()
		time.Sleep(100 * time.Millisecond) // the upstream session is parked
	}
	accepts := map[string][]string{}
	if !waitFor(10*time.Second, func() bool {
		accepts = map[string][]string{}
		for _, e := range up.events("accept") {
			accepts[strings.Trim(e.Get("from"), "<>")] = append(accepts[strings.Trim(e.Get("from"), "<>")], e.Get("id")+" auth="+e.Get("auth"))
		}
		return len(accepts) >= len(heard)
	}) {
		t.Fatalf("upstream accepted %v; want %d messages; upstream stderr:\n%s", accepts, len(heard), up.stderr())
	}
	for from, id := range heard {
		if got := accepts[from]; len(got) != 1 || got[0] != id+" auth=alice@rk.test" {
			t.Errorf("%s: upstream accepts %q; want once, as %s, logged in as alice@rk.test", from, got, id)
		}
	}
	for from := range accepts {
		if _, ok := heard[from]; !ok {
			t.Errorf("upstream accepted a message from %s, which no client completed", from)
		}
	}
	sink.WaitCount(t, len(heard), 20*time.Second)
	for _, m := range sink.Messages() {
		if !strings.Contains(m.Data, "with ESMTPS") {
			t.Errorf("message from %s reached the upstream without TLS:\n%s", m.From, head(m.Data))
		}
	}
	t.Logf("upstream sessions: %d", len(up.events("connect")))
}

// TestReview12FinalAsClientWithDaemon: messages dropped into a spool by
// "relaykeeper submit" from other processes, forwarded at the same time
// by a daemon polling every second and by two "--as-client" runs on the
// same spool (cron jobs overlapping a daemon): every message reaches the
// upstream exactly once and the spool ends empty.
func TestReview12FinalAsClientWithDaemon(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, _ string) harness.Response {
		if st == harness.StageEndOfData {
			return harness.Response{Delay: 30 * time.Millisecond}
		}
		return harness.Response{}
	}})
	spool := t.TempDir()
	submit := func(from string) {
		if code, out, errOut := runCLIStdin(t, "Subject: "+from+"\n\nbody\n", "submit", "--spool-dir", spool, "-f", from, "bob@example.net"); code != 0 {
			t.Errorf("submit %s: exit %d, %q %q", from, code, out, errOut)
		}
	}
	var want []string
	for k := range 30 {
		from := fmt.Sprintf("early%d@example.org", k)
		submit(from)
		want = append(want, from)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--poll", "1",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	type res struct {
		code        int
		out, errOut string
	}
	results := make(chan res, 2)
	for range 2 {
		go func() {
			out, errOut, code := runBinary(t, harness.Binary(t), "", "--as-client", up.Addr(), "--spool-dir", spool)
			results <- res{code, out, errOut}
		}()
	}
	for k := range 10 {
		from := fmt.Sprintf("late%d@example.org", k)
		submit(from)
		want = append(want, from)
	}
	for range 2 {
		select {
		case x := <-results:
			if x.code != 0 {
				t.Logf("--as-client: exit %d; stdout %q stderr %q", x.code, x.out, x.errOut)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("--as-client still running after 30s")
		}
	}
	if !waitFor(15*time.Second, func() bool {
		for _, f := range want {
			if acceptedFrom(up, f) == 0 {
				return false
			}
		}
		return true
	}) {
		for _, f := range want {
			if acceptedFrom(up, f) == 0 {
				t.Errorf("%s: never forwarded", f)
			}
		}
		out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", spool)
		t.Fatalf("queue:\n%s\nstderr:\n%s", out, r.stderr())
	}
	time.Sleep(2 * time.Second) // two more poll ticks
	for _, f := range want {
		if n := acceptedFrom(up, f); n != 1 {
			t.Errorf("%s: forwarded %d times; want once", f, n)
		}
	}
	waitSpool(t, spool, 5*time.Second, "empty", func(m map[string][]string) bool { return len(m) == 0 })
}

// TestReview12FinalStaleParkedSession: b.test's next hop closes a session
// that stays idle for 300 ms (as servers do, without a 421). A message to
// b.test leaves a parked session behind; once the upstream has closed it,
// messages to b.test alone and with a recipient at a.test first (whose
// worker borrows a b.test session) are delivered at their first attempt,
// on a new session, not deferred for a minimal back-off (60 s here).
func TestReview12FinalStaleParkedSession(t *testing.T) {
	t.Parallel()
	a := harness.NewFakeSMTP(t, harness.Script{})
	b := newRawUpstream(t)
	b.mu.Lock()
	b.idle = 300 * time.Millisecond
	b.mu.Unlock()
	r, _ := r12RoutesTo(t, a.Addr(), b.addr(), "--forward-on-disconnect")
	mustSend(t, r.addr(), "park@example.org", []string{"x@b.test"}, message("park"))
	if _, ok := b.waitFrom("park@example.org", 10*time.Second); !ok {
		t.Fatalf("first message not delivered; stderr:\n%s", r.stderr())
	}
	time.Sleep(time.Second) // the upstream has closed the parked session
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	for _, m := range []struct {
		from string
		to   []string
	}{{"alone@example.org", []string{"y@b.test"}}, {"mixed@example.org", []string{"y@a.test", "z@b.test"}}} {
		if _, err := c.send(m.from, m.to, message(m.from)); err != nil {
			t.Fatal(err)
		}
	}
	c.cmd("QUIT")
	c.Close()
	for _, from := range []string{"alone@example.org", "mixed@example.org"} {
		if _, ok := b.waitFrom(from, 10*time.Second); !ok {
			var lines []string
			for _, e := range r.events("delivery") {
				lines = append(lines, fmt.Sprint(e.Fields))
			}
			t.Errorf("%s: not delivered to b.test's next hop within 10 s of its first attempt; deliveries:\n%s", from, strings.Join(lines, "\n"))
		}
	}
	if acceptedTo(a, "mixed@example.org", "y@a.test") != 1 {
		t.Errorf("mixed: a.test's recipient not delivered once")
	}
	for _, e := range r.unsent() {
		t.Errorf("delivery %v; want every recipient sent at once", e.Fields)
	}
}

// TestReview12FinalStopMidLegs: a message for a.test and b.test is
// delivered to a.test, and b.test's next hop is slow to answer RCPT when
// the relay is told to stop (SIGTERM, the default grace). Whether the
// relay finishes b.test's leg before it exits or leaves it for the
// restart, b.test gets the message once and a.test is not sent it again:
// a clean stop duplicates nothing.
func TestReview12FinalStopMidLegs(t *testing.T) {
	t.Parallel()
	a := harness.NewFakeSMTP(t, harness.Script{})
	b := newRawUpstream(t)
	b.mu.Lock()
	b.rcptReply = func(conn int, _ string) string {
		if conn == 1 {
			time.Sleep(4 * time.Second)
		}
		return ""
	}
	b.mu.Unlock()
	r, _ := r12RoutesTo(t, a.Addr(), b.addr(), "--forward-on-disconnect")
	mustSend(t, r.addr(), "mixed@example.org", []string{"y@a.test", "z@b.test"}, message("mixed stop"))
	if !waitFor(10*time.Second, func() bool { return acceptedTo(a, "mixed@example.org", "y@a.test") == 1 }) {
		t.Fatalf("a.test's leg not delivered; stderr:\n%s", r.stderr())
	}
	time.Sleep(300 * time.Millisecond) // b.test's RCPT is under way
	r.stop(20 * time.Second)
	r.restart()
	if _, ok := b.waitFrom("mixed@example.org", 15*time.Second); !ok {
		t.Fatalf("b.test's leg never delivered; stderr:\n%s", r.stderr())
	}
	time.Sleep(1500 * time.Millisecond)
	if n := acceptedTo(a, "mixed@example.org", "y@a.test"); n != 1 {
		t.Errorf("a.test got the message %d times; want once (a clean stop duplicated it)", n)
	}
	n := 0
	for _, m := range b.messages() {
		if m.from == "mixed@example.org" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("b.test got the message %d times; want once", n)
	}
}

// TestReview12FinalUnreachableNotRetried: dead.test's next hop accepts
// each connection and closes it at once, without a greeting. Once a
// session to it has failed so, other messages for it are not tried before
// minimal_backoff_time (60 s here) either (docs/queue.md): six messages
// sent in the next seconds open no further connection, and all stay
// queued.
func TestReview12FinalUnreachableNotRetried(t *testing.T) {
	t.Parallel()
	a := harness.NewFakeSMTP(t, harness.Script{})
	b := harness.NewFakeSMTP(t, harness.Script{})
	r, dead := r12RoutesTo(t, a.Addr(), b.Addr(), "--forward-on-disconnect", "--poll", "1")
	r.stop(10 * time.Second)
	ln, err := net.Listen("tcp4", dead)
	if err != nil {
		t.Fatalf("the dead port was taken meanwhile: %v", err)
	}
	defer ln.Close()
	var mu sync.Mutex
	accepted := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			c.Close()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return accepted }
	r.restart()
	mustSend(t, r.addr(), "first@example.org", []string{"x@dead.test"}, message("unreachable first"))
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<x@dead.test>" })
	n0 := count()
	for i := range 6 {
		mustSend(t, r.addr(), fmt.Sprintf("later%d@example.org", i), []string{fmt.Sprintf("x%d@dead.test", i)}, message("later"))
	}
	mustSend(t, r.addr(), "live@example.org", []string{"y@a.test"}, message("live"))
	if !waitFor(10*time.Second, func() bool { return acceptedTo(a, "live@example.org", "y@a.test") == 1 }) {
		t.Fatalf("live message not delivered")
	}
	time.Sleep(2500 * time.Millisecond) // poll ticks
	if n := count(); n > n0 {
		t.Errorf("%d connections to the unreachable next hop after the first failure (%d before); want none within minimal_backoff_time", n-n0, n0)
	}
	for _, e := range r.events("delivery") {
		t.Logf("%s %s attempt=%s %s", e.Get("to"), e.Get("result"), e.Get("attempt"), e.Get("reply"))
	}
}

// r12Status is a field of /proc/PID/status in KiB.
func r12Status(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			var n int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n)
			return n
		}
	}
	return -1
}

// TestReview12FinalBigConcurrent: 16 clients at once, each sending a 4 MB
// message (64 MB in all), with the default memory limit: every message is
// accepted and forwarded intact in size, and the relay's peak resident set
// stays far below the mail in flight (the text is read in blocks and
// spooled, not held whole).
func TestReview12FinalBigConcurrent(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "[policy]\nmax_connections_per_ip = 1000\n"),
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	pid := r.current().PID()
	const clients, size = 16, 4 << 20
	line := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ..", 1) + "\n"
	body := "Subject: big\n\n" + strings.Repeat(line, size/len(line))
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := sendMail(r.addr(), fmt.Sprintf("big%d@example.org", i), []string{"bob@example.net"}, body); err != nil {
				errs <- fmt.Errorf("client %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	hwm := r12Status(t, pid, "VmHWM")
	t.Logf("relay peak RSS %d KiB after %d concurrent %d MB messages", hwm, clients, size>>20)
	if hwm > 160<<10 {
		t.Errorf("relay peak RSS %d KiB; want well under the %d MB of mail in flight", hwm, clients*size>>20)
	}
	if !waitFor(120*time.Second, func() bool { return len(up.Transactions()) >= clients }) {
		t.Fatalf("forwarded %d of %d", len(up.Transactions()), clients)
	}
	want := len(strings.ReplaceAll(body, "\n", "\r\n"))
	for _, tx := range up.Transactions() {
		// The relay adds its Received field (and Message-ID and Date).
		if got := len(tx.Data); !tx.Accepted() || got < want || got > want+2000 {
			t.Errorf("%s: forwarded %d bytes (accepted %v); want %d and the relay's fields", tx.MailFrom, got, tx.Accepted(), want)
		}
	}
}

// TestReview12FinalAsClientDead: "--as-client" to a smarthost that refuses
// connections keeps every submitted message (none failed or bounced) and
// says so in its exit status; the next run to a live smarthost forwards
// each once and leaves the spool empty.
func TestReview12FinalAsClientDead(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	for k := range 5 {
		from := fmt.Sprintf("ac%d@example.org", k)
		if code, out, errOut := runCLIStdin(t, "Subject: ac\n\nbody\n", "submit", "--spool-dir", spool, "-f", from, "bob@example.net", "carol@example.net"); code != 0 {
			t.Fatalf("submit: exit %d %q %q", code, out, errOut)
		}
	}
	dead := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	out, errOut, code := runBinary(t, harness.Binary(t), "", "--as-client", dead, "--spool-dir", spool)
	t.Logf("--as-client to a dead smarthost: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	if code == 0 {
		t.Errorf("--as-client to a dead smarthost exited 0; want a failure status")
	}
	files := spoolFiles(t, spool)
	if len(files) != 5 {
		t.Errorf("spool after the failed run: %v; want the 5 messages", files)
	}
	for id, sfx := range files {
		for _, s := range sfx {
			if strings.Contains(s, "bad") || strings.Contains(s, "fail") {
				t.Errorf("%s: %v after a refused connection; want it still ready", id, sfx)
			}
		}
	}
	up := harness.NewFakeSMTP(t, harness.Script{})
	if out, errOut, code := runBinary(t, harness.Binary(t), "", "--as-client", up.Addr(), "--spool-dir", spool); code != 0 {
		t.Errorf("--as-client to a live smarthost: exit %d %q %q", code, out, errOut)
	}
	for k := range 5 {
		if n := acceptedFrom(up, fmt.Sprintf("ac%d@example.org", k)); n != 1 {
			t.Errorf("ac%d: forwarded %d times; want once", k, n)
		}
	}
	checkSpoolEmpty(t, spool)
}

// TestReview12FinalConcurrencyLimits: with four delivery workers, twelve
// messages for a.test (destination_concurrency_limit 1) and twelve for
// b.test (limit 2), sent by parallel clients: never more sessions in the
// middle of a message at a next hop than its limit, and each message once.
func TestReview12FinalConcurrencyLimits(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	inFlight, peak := map[string]int{}, map[string]int{}
	slow := func(name string) harness.Script {
		return harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, _ string) harness.Response {
			if st == harness.StageEndOfData {
				mu.Lock()
				inFlight[name]++
				peak[name] = max(peak[name], inFlight[name])
				mu.Unlock()
				time.Sleep(150 * time.Millisecond)
				mu.Lock()
				inFlight[name]--
				mu.Unlock()
			}
			return harness.Response{}
		}}
	}
	a, b := harness.NewFakeSMTP(t, slow("a")), harness.NewFakeSMTP(t, slow("b"))
	r, _ := r12RoutesTo(t, a.Addr(), b.Addr(), "--forward-on-disconnect")
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range []string{"a", "b"} {
				from := fmt.Sprintf("lim-%s%d@example.org", d, i)
				if _, err := sendMail(r.addr(), from, []string{"x@" + d + ".test"}, message(from)); err != nil {
					t.Errorf("%s: %v", from, err)
				}
			}
		}()
	}
	wg.Wait()
	if !waitFor(20*time.Second, func() bool { return len(a.Transactions()) >= 12 && len(b.Transactions()) >= 12 }) {
		t.Fatalf("delivered %d to a.test, %d to b.test; want 12 each", len(a.Transactions()), len(b.Transactions()))
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	t.Logf("peak sessions in a message: a.test %d, b.test %d", peak["a"], peak["b"])
	if peak["a"] > 1 || peak["b"] > 2 {
		t.Errorf("peak sessions a.test %d (limit 1), b.test %d (limit 2)", peak["a"], peak["b"])
	}
	mu.Unlock()
	for i := range 12 {
		for _, f := range []*harness.FakeSMTP{a, b} {
			for _, d := range []string{"a", "b"} {
				from := fmt.Sprintf("lim-%s%d@example.org", d, i)
				if n := acceptedFrom(f, from); (f == a) == (d == "a") && n != 1 {
					t.Errorf("%s: delivered %d times; want once", from, n)
				}
			}
		}
	}
}
