package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// greetLine connects to addr from the local address from, sends send (if
// any) and returns the first line the server writes, without its line
// ending, and the connection, which the test closes at its end.
func greetLine(t *testing.T, addr, from, send string) (string, net.Conn) {
	t.Helper()
	c, err := dialPlain(addr, from)
	if err != nil {
		t.Fatalf("connect to %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	if send != "" {
		c.Write([]byte(send))
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return "read: " + err.Error(), c
	}
	return strings.TrimRight(line, "\r\n"), c
}

// TestRevWeb4POP3ConnectionLimit: POP3 sessions were unbounded. One client
// that opened 20,000 connections and sent nothing held them for the
// 10-minute idle timeout: 220 MB of memory, and every file descriptor the
// relay had, so that SMTP clients were connected by the kernel and never
// greeted ("pop3: accept failed ... too many open files"). POP3 now takes
// [policy] max_connections and max_connections_per_ip as SMTP does,
// counted apart.
func TestRevWeb4POP3ConnectionLimit(t *testing.T) {
	t.Parallel()
	secrets := filepath.Join(t.TempDir(), "pop.auth")
	os.WriteFile(secrets, []byte("server plain alice s3cret\n"), 0o600)
	popAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startPolicyRelay(t, "[policy]\nmax_connections_per_ip = 3\n", "--pop", "--pop-auth", secrets,
		"--interface", "pop="+popAddr)
	harness.WaitPort(t, popAddr, 5*time.Second)
	var held []net.Conn
	for i := range 3 {
		line, c := greetLine(t, popAddr, "127.0.0.1", "")
		if !strings.HasPrefix(line, "+OK") {
			t.Fatalf("POP3 connection %d from 127.0.0.1: %q; want the +OK greeting", i+1, line)
		}
		held = append(held, c)
	}
	want := "-ERR [SYS/TEMP] too many connections from 127.0.0.1; try again later"
	if line, _ := greetLine(t, popAddr, "127.0.0.1", ""); line != want {
		t.Errorf("fourth POP3 connection from 127.0.0.1: %q; want %q", line, want)
	}
	if line, _ := greetLine(t, popAddr, "127.0.0.2", ""); !strings.HasPrefix(line, "+OK") {
		t.Errorf("POP3 connection from 127.0.0.2: %q; want the +OK greeting (the limit is per address)", line)
	}
	// SMTP counts its own clients: still served.
	mustDial(t, r.addr(), "127.0.0.1")
	held[0].Close()
	if !waitFor(5*time.Second, func() bool {
		line, c := greetLine(t, popAddr, "127.0.0.1", "")
		c.Close()
		return strings.HasPrefix(line, "+OK")
	}) {
		t.Errorf("after one of the three closed, 127.0.0.1 is still refused")
	}
}

// TestRevWeb4AdminConnectionLimit: the admin line protocol kept every
// connection for its 10-minute idle timeout, password or not, and the
// HTTP API every keep-alive connection (a 401 included) for 2 minutes,
// without limit. Each now serves at most 50 connections from one address
// (200 in all); the next one is told so and closed.
func TestRevWeb4AdminConnectionLimit(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, adminPort := adminRelay(t, up.Addr(), "--admin-http", httpAddr)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	textAddr := fmt.Sprintf("127.0.0.1:%d", adminPort)
	const get = "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	for i := range 50 {
		if line, _ := greetLine(t, textAddr, "127.0.0.1", "pid\r\n"); strings.HasPrefix(line, "error") {
			t.Fatalf("admin connection %d: %q", i+1, line)
		}
		if line, _ := greetLine(t, httpAddr, "127.0.0.1", get); line != "HTTP/1.1 200 OK" {
			t.Fatalf("HTTP connection %d: %q", i+1, line)
		}
	}
	want := "error: too many connections from 127.0.0.1; try again later"
	if line, _ := greetLine(t, textAddr, "127.0.0.1", ""); line != want {
		t.Errorf("51st admin connection from 127.0.0.1: %q; want %q", line, want)
	}
	if line, _ := greetLine(t, httpAddr, "127.0.0.1", ""); line != "HTTP/1.1 503 Service Unavailable" {
		t.Errorf("51st HTTP connection from 127.0.0.1: %q; want a 503", line)
	}
	if line, _ := greetLine(t, textAddr, "127.0.0.3", "pid\r\n"); strings.HasPrefix(line, "error") {
		t.Errorf("admin connection from 127.0.0.3: %q; want served (the limit is per address)", line)
	}
}

// TestRevWeb4DashboardLargeQueue: the dashboard fetched and drew the whole
// queue every 5 seconds, whatever its size: with 20,000 messages queued a
// listing was 7 MB and took the relay 1.9 s, one open tab cost the relay
// 14% of a core, and the page refreshed on a timer whether or not the last
// refresh was over, so that with a larger backlog the listings piled up on
// the relay. The page now asks for the first 500 (GET /api/queue?limit=N,
// which says truncated and still counts them all), says so, and never has
// two refreshes under way.
func TestRevWeb4DashboardLargeQueue(t *testing.T) {
	t.Parallel()
	ctx, r, base := acceptingDashboard(t)
	const n = 503
	for i := range n {
		mustSend(t, r.addr(), "bulk@example.org", []string{fmt.Sprintf("r%d@example.net", i)}, message("bulk"))
	}
	var listing struct {
		Messages  []json.RawMessage `json:"messages"`
		Requests  int               `json:"requests"`
		Truncated bool              `json:"truncated"`
	}
	if err := json.Unmarshal([]byte(scrape(t, base+"/api/queue?limit=2")), &listing); err != nil {
		t.Fatal(err)
	}
	if len(listing.Messages) != 2 || listing.Requests != n || !listing.Truncated {
		t.Errorf("GET /api/queue?limit=2: %d messages, requests %d, truncated %v; want 2, %d, true",
			len(listing.Messages), listing.Requests, listing.Truncated, n)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`#queue-table tr[data-state="ready"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	rows, summary := rowsAndText(t, ctx, "#queue-table tbody tr", "queue-summary")
	if rows != 500 || !strings.Contains(summary, fmt.Sprintf("%d message(s)", n)) || !strings.Contains(summary, "the first 500 shown") {
		t.Errorf("the queue page shows %d rows, summary %q; want 500 rows and a summary that says %d, the first 500 shown", rows, summary, n)
	}
	// Refreshes asked for at once (a timer, the filter, a tab change):
	// one listing request at a time.
	most, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => {
		let now = 0, most = 0;
		const orig = window.fetch;
		window.fetch = async (...a) => {
			const listing = new URL(a[0], location.href).pathname === '/api/queue';
			if (listing) { now++; most = Math.max(most, now); }
			try { return await orig(...a); } finally { if (listing) now--; }
		};
		await Promise.all([refresh(), refresh(), refresh(), refresh()]);
		await new Promise(r => setTimeout(r, 2000));
		window.fetch = orig;
		return most;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if most != 1 {
		t.Errorf("%d queue listings were under way at once; want 1", most)
	}
}

// TestRevWeb4DashboardStatusLine: the page's status line said "1 accepted,
// 2 forwarded, 1 failed" for one message to three recipients, two
// delivered and one refused: the counters count recipients, so the page
// looked as if mail went out twice, and the same word "failed" stood for
// bounced recipients since the start and for the queue's messages in the
// failed state. It now names what it counts, and shows the messages being
// forwarded.
func TestRevWeb4DashboardStatusLine(t *testing.T) {
	t.Parallel()
	ctx, _, r, base := refusingDashboard(t)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net", "carol@example.net", "nobody@example.net"}, message("three"))
	resp, err := http.Post(base+"/api/flush", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "queue 0 ready, 0 being forwarded, 0 held, 1 failed · 0 sessions · " +
		"since the start 1 message(s) accepted, 2 recipient(s) delivered, 1 bounced"
	var got string
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById('status').textContent.endsWith(%q)`, want)),
	)
	if err != nil {
		got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		t.Errorf("status line %q; want it to end %q", got, want)
	}
}

// refusingDashboard starts a browser, and a relay with the dashboard whose
// upstream (returned too) refuses nobody@example.net with 550; refused mail fails without
// a notice (--no-bounces).
func refusingDashboard(t *testing.T) (ctx context.Context, up *harness.FakeSMTP, r *relay, base string) {
	t.Helper()
	ctx = browser(t)
	up = harness.NewFakeSMTP(t, harness.Script{RcptFor: map[string]harness.Response{
		"nobody@example.net": {Reply: "550 5.1.1 no such user"}}})
	r, base = dashboardRelay(t, up.Addr(), "--no-bounces")
	return ctx, up, r, base
}

// TestRevWeb4POP3DeleteLogged: a message a POP3 client took (DELE, QUIT)
// left the spool without a word in the mail log, whose "everything that
// happened to one message" grep then ended at its accept line, and
// without a count in the metrics: a store-and-retrieve relay showed mail
// accepted, none forwarded, and the queue emptying by itself. Each removal
// now writes a pop-delete line (id, client, user) and counts in
// relaykeeper_pop3_deleted_total.
func TestRevWeb4POP3DeleteLogged(t *testing.T) {
	t.Parallel()
	secrets := filepath.Join(t.TempDir(), "pop.auth")
	os.WriteFile(secrets, []byte("server plain alice s3cret\n"), 0o600)
	popAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startPolicyRelay(t, "", "--pop", "--pop-auth", secrets, "--interface", "pop="+popAddr, "--admin-http", httpAddr)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("for pop")).Final)
	harness.WaitPort(t, popAddr, 5*time.Second)
	c, err := dialPlain(popAddr, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var last string
	for _, cmd := range []string{"", "USER alice", "PASS s3cret", "DELE 1", "QUIT"} {
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		if last, err = br.ReadString('\n'); err != nil || !strings.HasPrefix(last, "+OK") {
			t.Fatalf("POP3 %q: %q, %v", cmd, last, err)
		}
	}
	e := r.waitEvent("pop-delete", 5*time.Second, nil)
	if e.Get("id") != id || e.Get("user") != "alice" || !strings.HasPrefix(e.Get("client"), "127.0.0.1:") {
		t.Errorf("pop-delete line: id %q user %q client %q; want %s, alice, 127.0.0.1:PORT", e.Get("id"), e.Get("user"), e.Get("client"), id)
	}
	if m := scrape(t, "http://"+httpAddr+"/metrics"); !strings.Contains(m, "\nrelaykeeper_pop3_deleted_total 1\n") {
		t.Errorf("/metrics has no relaykeeper_pop3_deleted_total 1:\n%s", grepLines(m, "relaykeeper_pop3"))
	}
}

// TestRevWeb4MailLogC1Controls: a client's SMTPUTF8 address went into the
// mail log bare with Unicode's C1 controls in it: U+009B is a terminal's
// CSI, so 'MAIL FROM:<x<U+009B>2J...>' cleared the screen of an operator
// running tail -f on the log, and U+009B 1A moved the cursor up over the
// lines before (U+0085, NEL, and U+2028 went in raw too). maillog.md
// promises that a value with a control character is quoted with Go's
// escapes; the writer only looked at ASCII.
func TestRevWeb4MailLogC1Controls(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "")
	from := "x\u009b2J\u009b1A\u0085\u2028y@example.org"
	sendC1(t, r, from, "bob@example.net")
	e := r.waitEvent("accept", 5*time.Second, nil)
	if e.Get("from") != "<"+from+">" {
		t.Errorf("accept line's from parses as %q; want %q", e.Get("from"), "<"+from+">")
	}
	for _, raw := range []string{"\u009b", "\u0085", "\u2028"} {
		if strings.Contains(r.stderr(), raw) {
			t.Errorf("the mail log holds %q raw", raw)
			break
		}
	}
}

// sendC1 sends a message from and to addresses that need SMTPUTF8.
func sendC1(t *testing.T, r *relay, from, to string) {
	t.Helper()
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<%s> SMTPUTF8", from)
	mustCmd(t, c, "250", "RCPT TO:<%s>", to)
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250", "Subject: c1\r\n\r\nhello\r\n.")
}

// TestRevWeb4QueueListC1Controls: mailq (relaykeeper queue list) and
// relaykeeper queue show printed a client's SMTPUTF8 addresses as they
// were, C1 controls and all: a sender 'x<U+009B>2J@...' cleared the
// operator's terminal when they looked at the queue. The envelope's fields
// are now printed with such characters escaped (\u009b); the header stays
// as stored, as postcat prints it.
func TestRevWeb4QueueListC1Controls(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	r := startPolicyRelay(t, "", "--spool-dir", spool)
	sendC1(t, r, "x\u009b2J\u009b31m@example.org", "ok\u009b1A@example.net")
	id := r.waitEvent("accept", 5*time.Second, nil).Get("id")
	for _, args := range [][]string{{"queue", "list"}, {"queue", "show", id}} {
		code, out, errOut := runCLI(t, append(args, "--spool-dir", spool)...)
		if code != 0 {
			t.Fatalf("relaykeeper %s: exit %d\n%s", args, code, errOut)
		}
		if strings.Contains(out, "\u009b") || !strings.Contains(out, `<x\u009b2J\u009b31m@example.org>`) ||
			!strings.Contains(out, `<ok\u009b1A@example.net>`) {
			t.Errorf("relaykeeper %s printed %q; want the addresses with U+009B escaped", args, out)
		}
	}
}

// TestRevWeb4DashboardManyClients: the rates page fetched and drew every
// client's rate of the last 24 hours at every refresh: up to 10,000
// clients an hour are kept, so a relay many clients use (or a crowd of
// hostile ones, one message each) gave a page of up to 250,000 rows. The
// page now asks for the first 500 (GET /api/rates?limit=N: the newest
// hours, the whole relay and the highest rates first) and says so.
func TestRevWeb4DashboardManyClients(t *testing.T) {
	t.Parallel()
	ctx, r, base := acceptingDashboard(t)
	const clients = 505
	for i := range clients {
		ip := fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)
		if _, err := sendFrom(r.addr(), ip, "a@example.org", []string{"b@example.net"}, message("one")); err != nil {
			t.Fatalf("from %s: %v", ip, err)
		}
	}
	resp, err := http.Post(base+"/api/flush", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var rates struct {
		Rates     []json.RawMessage `json:"rates"`
		Truncated bool              `json:"truncated"`
	}
	if err := json.Unmarshal([]byte(scrape(t, base+"/api/rates?limit=3")), &rates); err != nil {
		t.Fatal(err)
	}
	if len(rates.Rates) != 3 || !rates.Truncated {
		t.Errorf("GET /api/rates?limit=3: %d rates, truncated %v; want 3, true", len(rates.Rates), rates.Truncated)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#rates"),
		chromedp.WaitVisible(css(`#rates-table tbody tr td.mono`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	rows, note := rowsAndText(t, ctx, "#rates-table tbody tr", "rates-threshold")
	if rows != 500 || !strings.Contains(note, "the first 500 shown") {
		t.Errorf("the rates page shows %d rows, note %q; want 500 and a note that says the first 500 shown", rows, note)
	}
}

// rowsAndText returns how many elements the page has that match rows, and
// the text of the element with id.
func rowsAndText(t *testing.T, ctx context.Context, rows, id string) (int, string) {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, rows)))
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.getElementById(%q).textContent`, id)))
	if err != nil {
		t.Fatal(err)
	}
	return n, text
}

// acceptingDashboard starts a browser, and a relay with the dashboard
// whose upstream accepts everything.
func acceptingDashboard(t *testing.T) (context.Context, *relay, string) {
	t.Helper()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())
	return ctx, r, base
}
