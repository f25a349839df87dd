package admin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

func TestTextCommands(t *testing.T) {
	f := newFixture(t, Options{})
	ready := addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	held := addMessage(t, f.spool, "carol@example.com", "dave@example.net", spool.Held)
	failed := addMessage(t, f.spool, "erin@example.com", "nobody@example.net", spool.Failed)
	f.serveText(t, nil)
	c := f.dial(t)

	tests := []struct {
		cmd  string
		want []string
	}{
		{"", nil},
		{"help", []string{"commands: dnsbl, failures, flush, forward, help, info, list, notify, pid, quit, smtp, status, unfail-all"}},
		{"HeLp", []string{"commands: dnsbl, failures, flush, forward, help, info, list, notify, pid, quit, smtp, status, unfail-all"}},
		{"pid", []string{fmt.Sprint(os.Getpid())}},
		{"list", sorted(ready, held)},
		{"failures", []string{failed}},
		{"status", []string{
			fmt.Sprintf("pid: %d", os.Getpid()),
			"started: 2026-11-22T08:30:00Z (up 1h30m0s)",
			"listening: 127.0.0.1:25 submission=127.0.0.1:587 admin=" + f.addr,
			"smtp: enabled",
			"dnsbl: enabled",
			"smtp sessions: 2 open, 154 since start",
			"messages: 120 accepted, 117 forwarded, 3 failed",
			"queue: 1 ready, 0 being forwarded, 1 failed, 1 held, 0 being received",
		}},
		{"forward", []string{"OK"}},
		{"smtp disable", []string{"OK"}},
		{"SMTP Enable", []string{"OK"}},
		{"smtp", []string{"usage: smtp {disable|enable}"}},
		{"smtp off", []string{"usage: smtp {disable|enable}"}},
		{"dnsbl stop", []string{"OK"}},
		{"dnsbl start", []string{"OK"}},
		{"dnsbl start 10", []string{"usage: dnsbl {start|stop [<timeout>]}"}},
		{"password x", []string{"error: no password is configured"}},
		{"flush now please", []string{"OK"}}, // extra words are ignored, as in E-MailRelay
	}
	for _, tt := range tests {
		if got := c.cmd(tt.cmd); !cmp.Equal(got, tt.want) {
			t.Errorf("%q replied %q; want %q", tt.cmd, got, tt.want)
		}
	}
	got := f.relay.get()
	if got.forwards != 1 || got.flushes != 1 {
		t.Errorf("relay saw %d forwards, %d flushes; want 1, 1", got.forwards, got.flushes)
	}
	if want := []bool{false, true}; !slices.Equal(got.smtp, want) {
		t.Errorf("SetSMTP calls = %v; want %v", got.smtp, want)
	}
	if want := []bool{false, true}; !slices.Equal(got.dnsbl, want) {
		t.Errorf("SetDNSBL calls = %v; want %v", got.dnsbl, want)
	}

	c.PrintfLine("QUIT")
	if got := c.closing(); got != "" {
		t.Errorf("quit sent %q; want nothing", got)
	}
}

// TestTextInfo pins E-MailRelay's "info KEY": the relay's version for the
// key relaykeeper has, the keys for a missing or unknown one, and neither
// counts as an error.
func TestTextInfo(t *testing.T) {
	f := newFixture(t, Options{Version: "1.2.3", ErrorLimit: 2})
	f.serveText(t, nil)
	c := f.dial(t)
	version := "relaykeeper 1.2.3 (" + runtime.Version() + ")"
	tests := []struct {
		cmd  string
		want []string
	}{
		{"info version", []string{version}},
		{"INFO Version", []string{version}},
		{"info", []string{"usage: info {version}"}},
		{"info warranty", []string{"usage: info {version}"}},
		{"info version now", []string{"usage: info {version}"}},
		{"info version", []string{version}}, // the usage lines did not count toward the limit of 2
	}
	if got := c.cmd("status"); len(got) < 2 || got[1] != "version: 1.2.3" {
		t.Errorf("status = %q; want its second line \"version: 1.2.3\"", got)
	}
	for _, tt := range tests {
		if got := c.cmd(tt.cmd); !cmp.Equal(got, tt.want) {
			t.Errorf("%q replied %q; want %q", tt.cmd, got, tt.want)
		}
	}
}

func TestTextEmptyLists(t *testing.T) {
	f := newFixture(t, Options{})
	f.serveText(t, nil)
	c := f.dial(t)
	for _, cmd := range []string{"list", "failures"} {
		if got, want := c.cmd(cmd), []string{"<none>"}; !cmp.Equal(got, want) {
			t.Errorf("%s on an empty spool = %q; want %q", cmd, got, want)
		}
	}
	if got, want := c.cmd("flush"), []string{"error: no messages to send"}; !cmp.Equal(got, want) {
		t.Errorf("flush on an empty spool = %q; want %q", got, want)
	}
	if got := f.relay.get().flushes; got != 0 {
		t.Errorf("relay flushed %d times with nothing to send", got)
	}
}

func TestTextNotSupported(t *testing.T) {
	f := newFixture(t, Options{Relay: plainRelay{&fakeRelay{forwardErr: errors.New("no remote server configured: use --forward-to")}}})
	f.serveText(t, nil)
	c := f.dial(t)
	tests := []struct{ cmd, want string }{
		{"smtp disable", "error: not supported by this relay"},
		{"dnsbl stop", "error: not supported by this relay"},
		{"notify", "error: no events are configured"},
		{"forward", "error: no remote server configured: use --forward-to"},
	}
	for _, tt := range tests {
		if got := c.cmd(tt.cmd); !cmp.Equal(got, []string{tt.want}) {
			t.Errorf("%q replied %q; want %q", tt.cmd, got, tt.want)
		}
	}
}

func TestTextPrompt(t *testing.T) {
	f := newFixture(t, Options{Prompt: "relaykeeper> "})
	f.serveText(t, nil)
	c := f.dial(t)
	if got := c.cmd("pid"); !cmp.Equal(got, []string{fmt.Sprint(os.Getpid())}) {
		t.Errorf("pid with a custom prompt = %q", got)
	}
}

func TestTextDNSBLTimeout(t *testing.T) {
	f := newFixture(t, Options{})
	var after time.Duration
	var fire func()
	f.srv.afterFunc = func(d time.Duration, fn func()) func() bool {
		after, fire = d, fn
		return func() bool { return true }
	}
	f.serveText(t, nil)
	c := f.dial(t)
	if got := c.cmd("dnsbl stop 300"); !cmp.Equal(got, []string{"OK"}) {
		t.Fatalf("dnsbl stop 300 = %q", got)
	}
	if after != 300*time.Second {
		t.Errorf("re-enable scheduled after %v; want 5m0s", after)
	}
	fire()
	if got, want := f.relay.get().dnsbl, []bool{false, true}; !slices.Equal(got, want) {
		t.Errorf("after the timeout, SetDNSBL calls = %v; want %v", got, want)
	}

	// A later command supersedes the timer.
	c.cmd("dnsbl stop 60")
	c.cmd("dnsbl stop")
	fire()
	if got, want := f.relay.get().dnsbl, []bool{false, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("a superseded timer fired: SetDNSBL calls = %v; want %v", got, want)
	}
}

// TestTextFlushWaits: flush answers only when the relay's flush is over.
func TestTextFlushWaits(t *testing.T) {
	f := newFixture(t, Options{})
	f.relay.flushResult = make(chan error)
	f.relay.flushStarted = make(chan struct{}, 1)
	addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	f.serveText(t, nil)
	c := f.dial(t)

	for _, result := range []error{nil, errors.New("upstream: 421 4.3.2 shutting down")} {
		c.PrintfLine("flush")
		<-f.relay.flushStarted
		// Meanwhile no reply, and another flush is turned away.
		c.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if b, err := c.R.ReadByte(); err == nil {
			t.Fatalf("flush replied %q before it was done", b)
		}
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		other := f.dial(t)
		if got, want := other.cmd("flush"), []string{"error: still working"}; !cmp.Equal(got, want) {
			t.Errorf("second flush = %q; want %q", got, want)
		}
		f.relay.flushResult <- result
		want := []string{"OK"}
		if result != nil {
			want = []string{"error: " + result.Error()}
		}
		if got := c.reply(); !cmp.Equal(got, want) {
			t.Errorf("flush = %q; want %q", got, want)
		}
	}
}

func TestTextNotify(t *testing.T) {
	events := &Events{}
	f := newFixture(t, Options{Events: events, IdleTimeout: 200 * time.Millisecond})
	f.serveText(t, nil)
	c := f.dial(t)
	c.PrintfLine("notify") // no reply, as in E-MailRelay
	// Commands keep working; once pid is answered, notify has been.
	if got := c.cmd("pid"); !cmp.Equal(got, []string{fmt.Sprint(os.Getpid())}) {
		t.Fatalf("pid in notify mode = %q", got)
	}
	// No idle timeout in notify mode.
	time.Sleep(400 * time.Millisecond)
	fmt.Fprint(events, "2026-11-22T10:00:00.000Z accept id=6B02 size=179\n2026-11-22T10:00:01.000Z delivery id=6B02 result=sent\r\n")
	events.Publish("bell\a in a line")
	want := []string{
		"", // the prompt is left behind on a line of its own
		"EVENT: 2026-11-22T10:00:00.000Z accept id=6B02 size=179",
		"EVENT: 2026-11-22T10:00:01.000Z delivery id=6B02 result=sent",
		"EVENT: bell  in a line",
	}
	for _, w := range want {
		got, err := c.ReadLine()
		if err != nil || got != w {
			t.Fatalf("event line = %q, %v; want %q", got, err, w)
		}
	}
	if got := c.cmd("forward"); !cmp.Equal(got, []string{"OK"}) {
		t.Errorf("forward in notify mode = %q", got)
	}
	c.PrintfLine("quit")
	c.closing()
}

func TestTextIdleTimeout(t *testing.T) {
	f := newFixture(t, Options{IdleTimeout: 100 * time.Millisecond})
	f.serveText(t, nil)
	c := f.dial(t)
	start := time.Now()
	c.closing()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle session closed after %v", d)
	}
}

func TestTextErrorLimit(t *testing.T) {
	f := newFixture(t, Options{ErrorLimit: 3})
	f.serveText(t, nil)
	c := f.dial(t)
	for _, cmd := range []string{"frobnicate", "ſtatus"} {
		if got, want := c.cmd(cmd), []string{"error: unrecognised command"}; !cmp.Equal(got, want) {
			t.Errorf("%q = %q; want %q", cmd, got, want)
		}
	}
	// Usage replies and blank lines do not count.
	c.cmd("smtp")
	c.cmd("")
	c.PrintfLine("terminate") // not allowed: counts, and is the third
	if got, want := c.closing(), "error: terminate is not allowed (--admin-terminate)\r\n"; got != want {
		t.Errorf("third error: server sent %q and closed; want %q", got, want)
	}
	if got := f.relay.get().terminated; got != 0 {
		t.Errorf("relay terminated %d times; want 0", got)
	}
}

func TestTextTerminate(t *testing.T) {
	f := newFixture(t, Options{AllowTerminate: true})
	f.serveText(t, nil)
	c := f.dial(t)
	if got := c.cmd("help"); len(got) != 1 || !strings.Contains(got[0], "terminate") {
		t.Errorf("help with terminate allowed = %q; want terminate listed", got)
	}
	c.PrintfLine("terminate")
	if got, want := c.closing(), "OK\r\n"; got != want {
		t.Errorf("terminate: server sent %q; want %q", got, want)
	}
	if got := f.relay.get().terminated; got != 1 {
		t.Errorf("relay terminated %d times; want 1", got)
	}
}

func TestTextTerminateNeedsTerminator(t *testing.T) {
	f := newFixture(t, Options{AllowTerminate: true, Relay: plainRelay{&fakeRelay{}}})
	f.serveText(t, nil)
	c := f.dial(t)
	if got, want := c.cmd("terminate"), []string{"error: terminate is not allowed (--admin-terminate)"}; !cmp.Equal(got, want) {
		t.Errorf("terminate = %q; want %q", got, want)
	}
}

func TestTextPassword(t *testing.T) {
	for _, name := range []string{"loopback", "non-loopback"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, Options{Password: "s3cret with space"})
			l := loopbackListener(t)
			if name == "non-loopback" {
				l = nonLoopback{l}
			}
			f.serveText(t, l)
			c := f.dial(t)
			if got, want := c.cmd("list"), []string{`error: password required: send "password SECRET" first`}; !cmp.Equal(got, want) {
				t.Errorf("list before the password = %q; want %q", got, want)
			}
			if got, want := c.cmd("password"), []string{"usage: password SECRET"}; !cmp.Equal(got, want) {
				t.Errorf("password without one = %q; want %q", got, want)
			}
			if got, want := c.cmd("PASSWORD  s3cret with space "), []string{"OK"}; !cmp.Equal(got, want) {
				t.Errorf("right password = %q; want %q", got, want)
			}
			if got, want := c.cmd("list"), []string{"<none>"}; !cmp.Equal(got, want) {
				t.Errorf("list after the password = %q; want %q", got, want)
			}
			if got := c.cmd("help"); len(got) != 1 || !strings.Contains(got[0], "password") {
				t.Errorf("help = %q; want password listed", got)
			}

			wrong := f.dial(t)
			wrong.PrintfLine("password s3cret")
			if got, want := wrong.closing(), "error: wrong password\r\n"; got != want {
				t.Errorf("wrong password: server sent %q; want %q and a close", got, want)
			}
		})
	}
}

func TestTextUnfailAll(t *testing.T) {
	f := newFixture(t, Options{})
	ready := addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	failed1 := addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	failed2 := addMessage(t, f.spool, "dave@example.com", "nobody@example.org", spool.Failed)
	f.serveText(t, nil)
	c := f.dial(t)

	if got, want := c.cmd("failures"), sorted(failed1, failed2); !cmp.Equal(got, want) {
		t.Fatalf("failures = %q; want %q", got, want)
	}
	if got, want := c.cmd("unfail-all"), []string{"OK: 2 unfailed"}; !cmp.Equal(got, want) {
		t.Errorf("unfail-all = %q; want %q", got, want)
	}
	if got, want := c.cmd("failures"), []string{"<none>"}; !cmp.Equal(got, want) {
		t.Errorf("failures after unfail-all = %q; want %q", got, want)
	}
	if got, want := c.cmd("list"), sorted(ready, failed1, failed2); !cmp.Equal(got, want) {
		t.Errorf("list after unfail-all = %q; want %q", got, want)
	}
	for _, id := range []string{failed1, failed2} {
		env, st, err := f.spool.Read(id)
		if err != nil {
			t.Fatal(err)
		}
		if st != spool.Ready || !env.NextAttempt.IsZero() {
			t.Errorf("%s after unfail-all: state %v, next attempt %v; want ready, due now", id, st, env.NextAttempt)
		}
	}
	if got := f.relay.get().forwards; got != 1 {
		t.Errorf("relay told %d times; want 1", got)
	}
	if got, want := c.cmd("unfail-all"), []string{"OK: 0 unfailed"}; !cmp.Equal(got, want) {
		t.Errorf("second unfail-all = %q; want %q", got, want)
	}
}

// TestTextUnfailAllBusy: a failed message another process holds is
// reported and left alone.
func TestTextUnfailAllBusy(t *testing.T) {
	f := newFixture(t, Options{})
	failed := addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	cl, err := f.spool.Lock(failed)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Unlock()
	f.serveText(t, nil)
	c := f.dial(t)
	want := []string{failed + ": busy: locked by another process", "error: 1 of 1 not unfailed"}
	if got := c.cmd("unfail-all"); !cmp.Equal(got, want) {
		t.Errorf("unfail-all with a locked message = %q; want %q", got, want)
	}
}

func TestTextHTTPRequestCloses(t *testing.T) {
	f := newFixture(t, Options{})
	f.serveText(t, nil)
	c := f.dial(t)
	fmt.Fprint(c.W, "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nterminate\r\n")
	c.W.Flush()
	if got := c.closing(); got != "" {
		t.Errorf("HTTP request: server sent %q; want a silent close", got)
	}
}

func TestTextLongLine(t *testing.T) {
	f := newFixture(t, Options{})
	f.serveText(t, nil)
	c := f.dial(t)
	c.PrintfLine("%s", strings.Repeat("x", 2*maxLine))
	if got, want := c.closing(), "error: line too long\r\n"; got != want {
		t.Errorf("long line: server sent %q; want %q", got, want)
	}
}

func TestTextLastLineWithoutEnd(t *testing.T) {
	f := newFixture(t, Options{})
	f.serveText(t, nil)
	c := f.dial(t)
	fmt.Fprint(c.W, "pid")
	c.W.Flush()
	c.nc.(*net.TCPConn).CloseWrite()
	if got := c.reply(); !cmp.Equal(got, []string{fmt.Sprint(os.Getpid())}) {
		t.Errorf("pid without a line ending = %q", got)
	}
}

// sorted returns ids in spool order: ids made in one second sort by their
// random part.
func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
