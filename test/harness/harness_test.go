package harness

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv("HARNESS_HELPER"); mode != "" {
		helper(mode)
		return
	}
	Main(m)
}

// helper is the test binary acting as a process for TestProc.
func helper(mode string) {
	switch mode {
	case "listen":
		l, err := net.Listen("tcp4", os.Getenv("HARNESS_ADDR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		fmt.Println("ready on", l.Addr())
		select {
		case <-sigs:
		case <-time.After(30 * time.Second):
		}
		fmt.Fprintln(os.Stderr, "terminating")
		os.Exit(3)
	case "exit":
		fmt.Fprintln(os.Stderr, "bad things")
		os.Exit(7)
	case "sleep":
		time.Sleep(30 * time.Second)
	}
}

func TestProcNetListens(t *testing.T) {
	table := "  sl  local_address rem_address   st\n" +
		"   0: 0100007F:09C4 00000000:0000 0A\n" + // 127.0.0.1:2500 listening
		"   1: 00000000:09C5 00000000:0000 0A\n" + // 0.0.0.0:2501 listening
		"   2: 0100007F:09C6 0100007F:D431 01\n" // 127.0.0.1:2502 established
	tests := []struct {
		ip   string
		port int
		want bool
	}{
		{"127.0.0.1", 2500, true},
		{"127.0.0.2", 2500, false},
		{"127.0.0.1", 2501, true},
		{"127.0.0.1", 2502, false},
		{"127.0.0.1", 2503, false},
	}
	for _, tt := range tests {
		got := procNetListens([]byte(table), net.ParseIP(tt.ip).To4(), tt.port)
		if got != tt.want {
			t.Errorf("procNetListens(%s:%d) = %v; want %v", tt.ip, tt.port, got, tt.want)
		}
	}
}

func TestFreePortWaitPort(t *testing.T) {
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if ok, err := listening(addr); ok || err != nil {
		t.Fatalf("listening(%s) before Listen = %v, %v; want false, nil", addr, ok, err)
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	WaitPort(t, addr, 5*time.Second)
}

func TestProc(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	p := StartWith(t, ProcOptions{
		Env:      []string{"HARNESS_HELPER=listen", "HARNESS_ADDR=" + addr},
		Dir:      t.TempDir(),
		WaitAddr: addr,
	}, self)
	if p.PID() <= 0 || !p.Running() {
		t.Fatalf("PID() = %d, Running() = %v; want a running process", p.PID(), p.Running())
	}
	p.Signal(syscall.SIGTERM)
	code, err := p.Wait(10 * time.Second)
	if code != 3 || err != nil {
		t.Errorf("Wait after SIGTERM = %d, %v; want 3, nil", code, err)
	}
	if got, want := p.Stdout(), "ready on "+addr+"\n"; got != want {
		t.Errorf("Stdout() = %q; want %q", got, want)
	}
	if got, want := p.Stderr(), "terminating\n"; got != want {
		t.Errorf("Stderr() = %q; want %q", got, want)
	}

	p = StartWith(t, ProcOptions{Env: []string{"HARNESS_HELPER=exit"}}, self)
	if code, err := p.Wait(10 * time.Second); code != 7 || err != nil {
		t.Errorf("Wait = %d, %v; want 7, nil", code, err)
	}

	p = StartWith(t, ProcOptions{Env: []string{"HARNESS_HELPER=sleep"}}, self)
	if code, err := p.Wait(50 * time.Millisecond); code != -1 || err == nil {
		t.Errorf("Wait on a sleeping process = %d, %v; want -1 and an error", code, err)
	}
	p.Kill()
	if code, err := p.Wait(10 * time.Second); code != -1 || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Wait after Kill = %d, %v; want -1 and a \"killed\" error", code, err)
	}
}

func TestBinary(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		t.Setenv("RELAYKEEPER_BIN", "/usr/bin/true")
		if got := Binary(t); got != "/usr/bin/true" {
			t.Errorf("Binary() = %q; want /usr/bin/true", got)
		}
	})
	t.Run("build", func(t *testing.T) {
		t.Setenv("RELAYKEEPER_BIN", "")
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := filepath.Glob(filepath.Join(root, "cmd/relaykeeper/*.go")); len(m) == 0 {
			t.Skip("the relaykeeper binary cannot be built: cmd/relaykeeper has no Go files yet")
		}
		bin := Binary(t)
		if again := Binary(t); again != bin {
			t.Errorf("second Binary() = %q; want %q (built once)", again, bin)
		}
		if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("Binary() = %q: %v; want an executable", bin, err)
		}
	})
}

func TestParseSinkDump(t *testing.T) {
	dump := "X-Client-Addr: 127.0.0.1\n" +
		"X-Client-Proto: ESMTP\n" +
		"X-Helo-Args: client.test\n" +
		"X-Mail-Args: <a@example.org> SIZE=42 BODY=8BITMIME\n" +
		"X-Rcpt-Args: <b@example.net>\n" +
		"X-Rcpt-Args: <c@example.net> NOTIFY=NEVER\n" +
		"Received: from client.test ([127.0.0.1])\n" +
		"\tby smtp-sink (smtp-sink) with ESMTP id 7b71da98;\n" +
		"\tSun, 22 Nov 2026 02:18:07 +0000 (UTC)\n" +
		"Subject: hi\n\n.leading dot\nbody\n\n"
	got, err := parseSinkDump([]byte(dump))
	if err != nil {
		t.Fatal(err)
	}
	want := SinkMessage{
		ClientAddr: "127.0.0.1",
		Proto:      "ESMTP",
		Helo:       "client.test",
		MailArgs:   "<a@example.org> SIZE=42 BODY=8BITMIME",
		From:       "a@example.org",
		RcptArgs:   []string{"<b@example.net>", "<c@example.net> NOTIFY=NEVER"},
		To:         []string{"b@example.net", "c@example.net"},
		Data:       "Subject: hi\n\n.leading dot\nbody\n",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseSinkDump() = %+v; want %+v", got, want)
	}
	// A dump larger than a read buffer: the data is all that follows
	// the Received header, not the dump's tail.
	body := "Subject: big\n\n" + strings.Repeat(strings.Repeat("z", 998)+"\n", 20)
	big, err := parseSinkDump([]byte(strings.Replace(dump, "Subject: hi\n\n.leading dot\nbody\n\n", body+"\n", 1)))
	if err != nil || big.Data != body {
		t.Errorf("parseSinkDump(20 KB) = %d bytes of data starting %.20q, %v; want %d starting %.20q", len(big.Data), big.Data, err, len(body), body)
	}
	if _, err := parseSinkDump([]byte("X-Client-Addr: 127.0.0.1\nX-Mail-Args: <>\n")); err == nil {
		t.Errorf("parseSinkDump(incomplete) = nil error; want an error")
	}
}

func TestSinkSwaks(t *testing.T) {
	t.Parallel()
	s := StartSink(t, SinkOptions{})
	out, code := Swaks(t, "--server", s.Addr(), "--helo", "client.test",
		"--from", "alice@example.org", "--to", "bob@example.net,carol@example.net",
		"--header", "Subject: harness", "--body", "hello\n.dot line\nbye")
	if code != 0 {
		t.Fatalf("swaks exit code = %d; want 0\n%s", code, out)
	}
	s.WaitCount(t, 1, 5*time.Second)
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Messages() has %d messages; want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "alice@example.org" || m.Helo != "client.test" || m.ClientAddr != "127.0.0.1" {
		t.Errorf("From, Helo, ClientAddr = %q, %q, %q; want alice@example.org, client.test, 127.0.0.1", m.From, m.Helo, m.ClientAddr)
	}
	if want := []string{"bob@example.net", "carol@example.net"}; !slices.Equal(m.To, want) {
		t.Errorf("To = %q; want %q", m.To, want)
	}
	for _, want := range []string{"Subject: harness\n", "\nhello\n.dot line\nbye\n"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("Data = %q; want it to contain %q", m.Data, want)
		}
	}
}

func TestSinkFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      SinkOptions
		want      string // in swaks's output
		notWant   string
		wantCode  bool // swaks succeeds
		wantCount int
		minTime   time.Duration
	}{
		{name: "healthy", want: "250-PIPELINING", wantCode: true, wantCount: 1},
		{name: "hard reject RCPT", opts: SinkOptions{HardReject: []string{"RCPT"}}, want: "<** 500 5.3.0 Error: command failed"},
		{name: "soft reject MAIL, own reply", opts: SinkOptions{SoftReject: []string{"mail"}, SoftReply: "451 4.7.1 try later"}, want: "<** 451 4.7.1 try later"},
		{name: "disconnect at DATA", opts: SinkOptions{Disconnect: []string{"DATA"}}, want: "closed connection unexpectedly"},
		{name: "421 at RCPT", opts: SinkOptions{Reply421: []string{"RCPT"}}, want: "<** 421 "},
		{name: "no PIPELINING", opts: SinkOptions{NoPipelining: true}, notWant: "PIPELINING", wantCode: true, wantCount: 1},
		{name: "reject after dot is still dumped", opts: SinkOptions{HardReject: []string{"."}, HardReply: "554 5.7.0 no"}, want: "<** 554 5.7.0 no", wantCount: 1},
		{name: "abort after DATA", opts: SinkOptions{AbortAfterData: true}, want: "550 This violates SMTP"},
		{name: "DATA delay", opts: SinkOptions{DataDelay: time.Second}, wantCode: true, wantCount: 1, minTime: time.Second},
		{name: "RCPT delay", opts: SinkOptions{Delay: map[string]time.Duration{"rcpt": time.Second}}, wantCode: true, wantCount: 1, minTime: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := StartSink(t, tt.opts)
			start := time.Now()
			out, code := Swaks(t, "--server", s.Addr(), "--from", "a@example.org", "--to", "b@example.net")
			if got := code == 0; got != tt.wantCode {
				t.Errorf("swaks succeeded = %v (exit code %d); want %v\n%s", got, code, tt.wantCode, out)
			}
			if tt.want != "" && !strings.Contains(out, tt.want) {
				t.Errorf("swaks output lacks %q:\n%s", tt.want, out)
			}
			if tt.notWant != "" && strings.Contains(out, tt.notWant) {
				t.Errorf("swaks output has %q:\n%s", tt.notWant, out)
			}
			if elapsed := time.Since(start); elapsed < tt.minTime {
				t.Errorf("swaks took %v; want at least %v", elapsed, tt.minTime)
			}
			// The dump of a transaction is complete once swaks is done.
			if got := s.Count(); got != tt.wantCount {
				t.Errorf("Count() = %d; want %d", got, tt.wantCount)
			}
		})
	}
}

func TestSinkStopRestart(t *testing.T) {
	t.Parallel()
	s := StartSink(t, SinkOptions{})
	send := func() int {
		_, code := Swaks(t, "--server", s.Addr(), "--from", "a@example.org", "--to", "b@example.net")
		return code
	}
	if code := send(); code != 0 {
		t.Fatalf("swaks exit code = %d; want 0", code)
	}
	// A transaction in progress has a dump file, but it is not counted, and
	// Stop deletes it.
	c := dialRaw(t, s.Addr())
	got := c.converse("HELO c\r\n", "MAIL FROM:<x@example.org>\r\n", "RCPT TO:<y@example.net>\r\n", "DATA\r\n")
	if !strings.HasSuffix(got, "354 End data with <CR><LF>.<CR><LF>\r\n") {
		t.Fatalf("conversation = %q; want it to end with the 354", got)
	}
	c.send("Subject: never finished\r\n")
	if files, _ := os.ReadDir(s.Dir()); len(files) != 2 || s.Count() != 1 {
		t.Errorf("during a transaction: %d dump files, Count() = %d; want 2 and 1", len(files), s.Count())
	}
	s.Stop()
	if files, _ := os.ReadDir(s.Dir()); len(files) != 1 {
		t.Errorf("after Stop: %d dump files; want 1 (the aborted one deleted)", len(files))
	}
	if code := send(); code == 0 {
		t.Errorf("swaks to a stopped sink succeeded; want a failure")
	}
	s.Restart()
	if code := send(); code != 0 {
		t.Fatalf("swaks after Restart exit code = %d; want 0", code)
	}
	if got := s.WaitCount(t, 2, 5*time.Second); got != 2 {
		t.Errorf("Count() = %d; want 2", got)
	}
}

func TestSourceIntoSink(t *testing.T) {
	t.Parallel()
	s := StartSink(t, SinkOptions{})
	out, err := Source(t, SourceOptions{
		Addr: s.Addr(), Messages: 20, Sessions: 4, Size: 2000, Recipients: 2,
		From: "load@example.org", To: "sink@example.net",
	})
	if err != nil {
		t.Fatalf("Source() = %v\n%s", err, out)
	}
	if got := s.WaitCount(t, 20, 10*time.Second); got != 20 {
		t.Errorf("Count() = %d; want 20", got)
	}
	for _, m := range s.Messages() {
		if m.From != "load@example.org" || len(m.To) != 2 || len(m.Data) < 2000 {
			t.Errorf("message %s: From %q, %d recipients, %d bytes; want load@example.org, 2, at least 2000", m.File, m.From, len(m.To), len(m.Data))
		}
	}
}

func TestPostfixRelaysToSink(t *testing.T) {
	t.Parallel()
	// Two instances at once: distinct directories and ports.
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sink := StartSink(t, SinkOptions{})
			pf := StartPostfix(t, PostfixOptions{Relayhost: RelayhostFor(sink.Addr())})
			out, code := Swaks(t, "--server", pf.Addr(), "--from", "alice@example.org",
				"--to", name+"@example.net", "--header", "Subject: via postfix")
			if code != 0 {
				t.Fatalf("swaks to postfix exit code = %d; want 0\n%s", code, out)
			}
			line := pf.WaitLog(t, "status=sent", 15*time.Second)
			if want := "relay=127.0.0.1[127.0.0.1]:" + sinkPort(sink); !strings.Contains(line, want) {
				t.Errorf("mail log line %q lacks %q", line, want)
			}
			sink.WaitCount(t, 1, 5*time.Second)
			m := sink.Messages()[0]
			if m.From != "alice@example.org" || !slices.Equal(m.To, []string{name + "@example.net"}) || !strings.Contains(m.Data, "Subject: via postfix") {
				t.Errorf("sink got From %q, To %q, Data %q; want the message relayed", m.From, m.To, m.Data)
			}
			pf.WaitEmpty(t, 10*time.Second)
		})
	}
}

func sinkPort(s *Sink) string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return port
}

func TestPostfixSmarthostDown(t *testing.T) {
	t.Parallel()
	sink := StartSink(t, SinkOptions{})
	pf := StartPostfix(t, PostfixOptions{Relayhost: RelayhostFor(sink.Addr())})
	sink.Stop()
	if out, code := Swaks(t, "--server", pf.Addr(), "--from", "a@example.org", "--to", "b@example.net"); code != 0 {
		t.Fatalf("swaks to postfix exit code = %d; want 0\n%s", code, out)
	}
	pf.WaitLog(t, "status=deferred", 15*time.Second)
	if got := pf.QueueCount(); got != 1 {
		t.Errorf("QueueCount() with the smarthost down = %d; want 1", got)
	}
	sink.Restart()
	pf.FlushUntil(t, 15*time.Second, "status=sent", func() bool { return strings.Contains(pf.MailLog(), "status=sent") })
	sink.WaitCount(t, 1, 5*time.Second)
	pf.Stop()
	if m, ok := pf.master(); ok {
		t.Errorf("postfix master %d still runs after Stop", m.pid)
	}
}

func TestPostfixToFakeSMTP(t *testing.T) {
	t.Parallel()
	// Postfix's SMTP client pipelines MAIL, RCPT and DATA: a real-world
	// check of FakeSMTP, and of a retry after a temporary failure.
	f := NewFakeSMTP(t, Script{EndOfData: Response{Reply: "451-4.3.0 first line\r\n451 4.3.0 try again later"}})
	pf := StartPostfix(t, PostfixOptions{Relayhost: RelayhostFor(f.Addr())})
	if out, code := Swaks(t, "--server", pf.Addr(), "--from", "a@example.org", "--to", "b@example.net,c@example.net"); code != 0 {
		t.Fatalf("swaks to postfix exit code = %d; want 0\n%s", code, out)
	}
	pf.WaitLog(t, "status=deferred", 15*time.Second)
	f.Update(func(s *Script) { s.EndOfData = Response{} })
	pf.FlushUntil(t, 15*time.Second, "status=sent", func() bool { return strings.Contains(pf.MailLog(), "status=sent") })
	// Postfix may have retried before the Update: 451 at least once, then 250.
	txs := f.WaitTransactions(t, 2, 5*time.Second)
	for i, tx := range txs {
		want := i == len(txs)-1
		if tx.Accepted() != want || tx.MailFrom != "a@example.org" || len(tx.To()) != 2 || !strings.Contains(string(tx.Data), "\r\n\r\n") {
			t.Errorf("transaction %d: Accepted %v, MailFrom %q, To %q, %d bytes; want %v, a@example.org, two recipients, a message", i, tx.Accepted(), tx.MailFrom, tx.To(), len(tx.Data), want)
		}
	}
	pf.WaitEmpty(t, 10*time.Second)
}

// TestSinkStopHoldsPort: a stopped sink's port stays bound (connections
// are refused) until Restart, so that a parallel test's listener cannot
// take it: TestPostfixSmarthostDown saw its "down" smarthost answer as
// another test's fake server, which had been given the freed port.
func TestSinkStopHoldsPort(t *testing.T) {
	t.Parallel()
	sink := StartSink(t, SinkOptions{})
	sink.Stop()
	if l, err := net.Listen("tcp", sink.Addr()); err == nil {
		l.Close()
		t.Errorf("Listen(%s) after Stop = nil; want the port held", sink.Addr())
	}
	if c, err := net.DialTimeout("tcp", sink.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("Dial(%s) after Stop = nil; want refused", sink.Addr())
	}
	sink.Restart()
	if c, err := net.DialTimeout("tcp", sink.Addr(), time.Second); err != nil {
		t.Errorf("Dial(%s) after Restart = %v; want a connection", sink.Addr(), err)
	} else {
		c.Close()
	}
}
