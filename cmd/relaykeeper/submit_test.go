package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var submitT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

var testSubmitEnv = submitEnv{
	now:      func() time.Time { return submitT0 },
	hostname: func() (string, error) { return "host.example", nil },
	username: func() string { return "carol" },
	uid:      1000,
}

// runSubmitTest submits input to a fresh spool (unless args name one) and
// returns the status, the output, and the stored message if there is one.
func runSubmitTest(t *testing.T, input string, args ...string) (status int, stdout, stderr string, env *spool.Envelope, content string) {
	t.Helper()
	dir := t.TempDir()
	if !strings.Contains(strings.Join(args, " "), "--spool-dir") {
		args = append([]string{"--spool-dir", dir}, args...)
	}
	var out, errb bytes.Buffer
	status = submit(args, strings.NewReader(input), &out, &errb, testSubmitEnv)
	id := strings.TrimSpace(out.String())
	if status == exitOK {
		sp, err := spool.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		var st spool.State
		if env, st, err = sp.Read(id); err != nil || st != spool.Ready {
			t.Fatalf("submit printed %q; spool.Read = %v, %v", id, st, err)
		}
		b, err := os.ReadFile(sp.ContentPath(id))
		if err != nil {
			t.Fatal(err)
		}
		content = string(b)
	}
	return status, out.String(), errb.String(), env, content
}

func rcptAddrs(env *spool.Envelope) []string {
	var out []string
	for _, r := range env.Recipients {
		out = append(out, r.Addr)
	}
	return out
}

func TestSubmit(t *testing.T) {
	input := "From: Alice <alice@example.com>\nTo: bob@example.net\nSubject: hi\n\nline 1\n.\nline 3"
	status, out, errs, env, content := runSubmitTest(t, input, "-f", "bounces@example.com", "bob@example.net")
	if status != exitOK || errs != "" {
		t.Fatalf("submit = %d, %q", status, errs)
	}
	id := strings.TrimSpace(out)
	if !spool.ValidID(id) || out != id+"\n" {
		t.Errorf("output %q; want the queue id", out)
	}
	want := "Received: by host.example (relaykeeper, from userid 1000)\r\n" +
		"\tid " + id + "\r\n\tfor <bob@example.net>;\r\n\tSun, 22 Nov 2026 10:00:00 +0000\r\n" +
		"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: hi\r\n" +
		"Message-ID: <" + id + "." + strconv.FormatInt(submitT0.UnixNano(), 10) + "@host.example>\r\n" +
		"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
		"\r\nline 1\r\n.\r\nline 3\r\n"
	if content != want {
		t.Errorf("content diff (-got +want):\n%s", cmp.Diff(content, want))
	}
	if env.From != "bounces@example.com" || env.Client != "local" || env.BodyType != "7bit" ||
		!cmp.Equal(rcptAddrs(env), []string{"bob@example.net"}) || env.Recipients[0].Status != spool.Pending || !env.Arrival.Equal(submitT0) {
		t.Errorf("envelope %+v", env)
	}
}

func TestSubmitHeaders(t *testing.T) {
	input := "Date: Mon, 1 Jan 2026 00:00:00 +0000\r\nMessage-Id: <x@y>\r\nFrom: \"Doe, Jane\" <jane@example.com>\r\n" +
		"To: bob@example.net,\r\n Carol <carol@example.org>\r\nCc: friends: dave@example.com;\r\n" +
		"Bcc: secret@example.com\r\nBCC:\r\n hidden@example.com\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n"
	status, _, errs, env, content := runSubmitTest(t, input, "-t", "extra@example.com", "bob@example.net")
	if status != exitOK {
		t.Fatalf("submit -t = %d, %q", status, errs)
	}
	if want := []string{"extra@example.com", "bob@example.net", "carol@example.org", "dave@example.com", "secret@example.com", "hidden@example.com"}; !cmp.Equal(rcptAddrs(env), want) {
		t.Errorf("recipients %q; want %q", rcptAddrs(env), want)
	}
	if env.From != "jane@example.com" {
		t.Errorf("sender %q; want the From header's address", env.From)
	}
	if env.BodyType != "8bit" {
		t.Errorf("body type %q; want 8bit", env.BodyType)
	}
	if strings.Contains(strings.ToLower(content), "bcc") || strings.Contains(content, "hidden@") {
		t.Errorf("Bcc left in:\n%s", content)
	}
	if strings.Count(content, "Date:") != 1 || strings.Count(content, "Message-I") != 1 {
		t.Errorf("Date or Message-ID added although present:\n%s", content)
	}
	if !strings.HasSuffix(content, "Subject: caf\xc3\xa9\r\n\r\nbody\r\n") || strings.Contains(content, "\tfor <") {
		t.Errorf("content:\n%s", content)
	}
}

func TestSubmitSender(t *testing.T) {
	tests := []struct {
		input string
		args  []string
		want  string
	}{
		{"Subject: no from\n\nx\n", []string{"bob@example.net"}, "carol@host.example"},
		{"From: not an address\n\nx\n", []string{"bob@example.net"}, "carol@host.example"},
		{"From: a@example.com, b@example.com\n\nx\n", []string{"bob@example.net"}, "a@example.com"},
		{"From: a@example.com\n\nx\n", []string{"-f", "<>", "bob@example.net"}, ""},
		{"From: a@example.com\n\nx\n", []string{"--from=<s@example.com>", "bob@example.net"}, "s@example.com"},
		// An mbox "From " line is dropped, not taken for the body.
		{"From a@example.com Sat Nov 22 10:00:00 2026\nFrom: m@example.com\n\nx\n", []string{"bob@example.net"}, "m@example.com"},
	}
	for _, tt := range tests {
		status, _, errs, env, content := runSubmitTest(t, tt.input, tt.args...)
		if status != exitOK {
			t.Errorf("submit %q = %d, %q", tt.args, status, errs)
			continue
		}
		if env.From != tt.want {
			t.Errorf("submit %q of %q: sender %q; want %q", tt.args, tt.input, env.From, tt.want)
		}
		if strings.Contains(content, "From a@") {
			t.Errorf("mbox From line kept:\n%s", content)
		}
	}
}

func TestSubmitNoHeader(t *testing.T) {
	status, _, _, _, content := runSubmitTest(t, "just a body line\nand another\n", "bob@example.net")
	if status != exitOK || !strings.HasSuffix(content, "\r\n\r\njust a body line\r\nand another\r\n") {
		t.Errorf("submit of a headerless message = %d:\n%q", status, content)
	}
}

func TestSubmitErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	tests := []struct {
		input  string
		args   []string
		status int
		errs   string
	}{
		{"x", nil, exitUsage, "no recipients"},
		{"x", []string{"--bogus", "a@b.c"}, exitUsage, "bogus"},
		{"x", []string{"not an address"}, exitUsage, `recipient "not an address"`},
		{"x", []string{"-f", "bad sender", "a@b.c"}, exitUsage, "sender"},
		{"Subject: x\n\n", []string{"-t"}, exitUsage, "no recipients in the To, Cc or Bcc headers"},
		{"To: <<broken\n\n", []string{"-t"}, exitUsage, "To header"},
		{"x", []string{"--spool-dir", missing, "a@b.c"}, exitFailure, "spool directory " + missing},
	}
	for _, tt := range tests {
		status, out, errs, _, _ := runSubmitTest(t, tt.input, tt.args...)
		if status != tt.status || out != "" || !strings.Contains(errs, tt.errs) {
			t.Errorf("submit %q = %d, %q, %q; want %d and an error containing %q", tt.args, status, out, errs, tt.status, tt.errs)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("submit created a missing spool directory")
	}
	var out bytes.Buffer
	if status := runSubmit([]string{"--help"}, nil, &out, &out); status != exitOK || !strings.HasPrefix(out.String(), "usage: relaykeeper submit") {
		t.Errorf("submit --help = %d, %q", status, out.String())
	}
}

func TestSubmitConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "relaykeeper.toml")
	os.WriteFile(cfg, []byte("domain = \"relay.example\"\n[spool]\ndir = \""+dir+"\"\n"), 0o644)
	var out, errb bytes.Buffer
	if status := runSubmit([]string{"--config", cfg, "bob@example.net"}, strings.NewReader("Subject: x\n\nbody\n"), &out, &errb); status != exitOK {
		t.Fatalf("submit --config = %d, %q", status, errb.String())
	}
	id := strings.TrimSpace(out.String())
	b, err := os.ReadFile(filepath.Join(dir, id+".content"))
	if err != nil || !strings.HasPrefix(string(b), "Received: by relay.example (relaykeeper, from userid ") {
		t.Errorf("content %q, %v", b, err)
	}
}

// TestSubmitNotifiesRelay: a relay named in the spool's pid file hears
// SIGHUP (a shell stand-in that records it, as in TestQueueNotifiesRelay).
func TestSubmitNotifiesRelay(t *testing.T) {
	dir := t.TempDir()
	hups := filepath.Join(t.TempDir(), "hups")
	ready := filepath.Join(t.TempDir(), "ready")
	relay := exec.Command("sh", "-c", `trap 'echo HUP >> "$1"' HUP; : > "$2"; while :; do sleep 0.1; done`, "sh", hups, ready)
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		relay.Process.Kill()
		relay.Wait()
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stand-in relay did not start")
		}
	}
	os.WriteFile(filepath.Join(dir, queue.PIDFile), []byte(strconv.Itoa(relay.Process.Pid)+"\n"), 0o644)
	var out, errb bytes.Buffer
	if status := runSubmit([]string{"--spool-dir", dir, "bob@example.net"}, strings.NewReader("Subject: x\n\nbody\n"), &out, &errb); status != exitOK || errb.Len() > 0 {
		t.Fatalf("submit = %d, %q", status, errb.String())
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(hups); string(b) == "HUP\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay got no SIGHUP")
		}
	}
}

// TestSubmitEmailRelaySwitches: emailrelay-submit's command line as its
// scripts write it: -s for the spool, the message from --content lines
// (base64, comma-separated, "" an empty line) with --no-stdin,
// --content-to, and -v or -n printing the content file's path or name.
func TestSubmitEmailRelaySwitches(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"-s", dir, "-v", "--no-stdin", "--content-to", "--content-date", "--content", b64("Subject: motd") + ",",
		"--content", b64("hello"), "-f", "me@here.example", "you@there.example"}
	if st := submit(args, strings.NewReader("never read\n"), &out, &errb, testSubmitEnv); st != exitOK {
		t.Fatalf("submit %q = %d, %q", args, st, errb.String())
	}
	path := strings.TrimSpace(out.String())
	if !filepath.IsAbs(path) || filepath.Dir(path) != dir || !strings.HasSuffix(path, ".content") {
		t.Fatalf("-v printed %q; want the content file's full path", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(b), "\r\n\r\n")
	if !strings.Contains(head, "\r\nTo: you@there.example\r\n") || !strings.Contains(head, "\r\nSubject: motd\r\n") || body != "hello\r\n" {
		t.Errorf("content %q; want To and Subject fields, then hello, and nothing of the standard input", b)
	}
	out.Reset()
	if st := submit([]string{"-s", dir, "-n", "you@there.example"}, strings.NewReader("Subject: x\n\nx\n"), &out, &errb, testSubmitEnv); st != exitOK ||
		strings.Contains(out.String(), "/") || !strings.HasSuffix(strings.TrimSpace(out.String()), ".content") {
		t.Errorf("-n: %d, %q; want the content file's name", st, out.String())
	}
	if st, _, errOut, _, _ := runSubmitTest(t, "", "--content", "!!", "a@b.example"); st != exitUsage || !strings.Contains(errOut, "base64") {
		t.Errorf("--content !!: %d, %q; want a usage error", st, errOut)
	}
}
