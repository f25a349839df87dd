package harness

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostfixOptions configure a private Postfix instance.
type PostfixOptions struct {
	// Relayhost is main.cf's relayhost, e.g. RelayhostFor(sink.Addr()).
	// Empty means none: mail for other domains then needs DNS, which is
	// off, so it is deferred.
	Relayhost string
	// SMTPTLSSecurityLevel is smtp_tls_security_level, the TLS policy of
	// Postfix's SMTP client; default "none".
	SMTPTLSSecurityLevel string
	// MainCF lines set main.cf parameters ("smtp_connect_timeout = 2s"),
	// over the harness's own where they name the same parameter.
	MainCF []string
	// MasterCF lines are appended to master.cf.
	MasterCF []string
	// Hostname is myhostname; default "postfix.relaykeeper.test".
	Hostname string
}

// RelayhostFor turns "127.0.0.1:2525" into "[127.0.0.1]:2525", a relayhost
// that Postfix uses as is, without an MX lookup.
func RelayhostFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return "[" + host + "]:" + port
}

// Postfix is a private, running Postfix instance: its own configuration,
// queue and data directories under one temporary directory, its smtpd on a
// loopback port, its own mail log file. Nothing of it is shared with the
// system's instance, whose configuration is only read (for defaults).
//
// As root, postfix(1) and postqueue(1) accept any configuration directory
// given with -c; the alternate_config_directories check in the default
// main.cf applies only to unprivileged users. So StartPostfix needs root,
// as Postfix's master does anyway, and skips the test otherwise (fails it
// under CI).
type Postfix struct {
	t       testing.TB
	bin     string // postfix(1)
	base    string
	confDir string
	spool   string
	maillog string
	addr    string

	mu      sync.Mutex // guards stopped
	stopped bool
}

// StartPostfix creates, starts and waits for a private Postfix instance,
// stopped and deleted at the end of the test. It skips the test (fails it
// under CI) when the postfix command is missing or the test does not run
// as root.
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	bin := need(t, "postfix")
	if os.Geteuid() != 0 {
		Missing(t, "harness: a private Postfix instance needs root (its master refuses to run otherwise)")
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		Missing(t, "harness: no postfix user: %v", err)
	}
	// Instances left by test processes that died before their cleanups.
	sweepOnce.Do(func() {
		sweeper{postfix: bin, grace: 10 * time.Second, logf: t.Logf}.sweep(os.TempDir())
	})
	me, err := self()
	if err != nil {
		t.Fatalf("harness: postfix: %v", err)
	}
	// A short path under /tmp, traversable by the postfix user: Postfix's
	// UNIX sockets live under the queue directory and their paths must stay
	// under 108 bytes, which t.TempDir's long names may not.
	base, err := os.MkdirTemp("", instancePrefix)
	if err != nil {
		t.Fatalf("harness: postfix: %v", err)
	}
	// First of all, so that a sweep by another test process never takes
	// this instance for a stale one.
	if err := writeOwner(base, me); err != nil {
		os.RemoveAll(base)
		t.Fatalf("harness: postfix: %v", err)
	}
	if b, err := filepath.EvalSymlinks(base); err == nil {
		base = b // so that it compares equal to the master's /proc/PID/cwd
	}
	p := &Postfix{
		t:       t,
		bin:     bin,
		base:    base,
		confDir: filepath.Join(base, "etc"),
		spool:   filepath.Join(base, "spool"),
		maillog: filepath.Join(base, "maillog"),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("harness: postfix %s mail log:\n%s", p.addr, tail(p.MailLog(), 64<<10))
		}
		os.RemoveAll(base)
	})
	data := filepath.Join(base, "data")
	for _, d := range []string{p.confDir, p.spool, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("harness: postfix: %v", err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatalf("harness: postfix: %v", err)
	}
	uid, _ := strconv.Atoi(pfUser.Uid)
	if err := os.Chown(data, uid, -1); err != nil {
		t.Fatalf("harness: postfix: %v", err)
	}

	// Retry with another port if the free one was taken meanwhile.
	for attempt := 0; ; attempt++ {
		p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		if err := p.writeConfig(opts, data); err != nil {
			t.Fatalf("harness: postfix: %v", err)
		}
		err := p.start()
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("harness: postfix: %v\nmail log:\n%s", err, tail(p.MailLog(), 16<<10))
		}
	}
	t.Cleanup(p.Stop)
	return p
}

func (p *Postfix) writeConfig(opts PostfixOptions, data string) error {
	hostname := opts.Hostname
	if hostname == "" {
		hostname = "postfix.relaykeeper.test"
	}
	tlsLevel := opts.SMTPTLSSecurityLevel
	if tlsLevel == "" {
		tlsLevel = "none"
	}
	main := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + p.spool,
		"data_directory = " + data,
		"maillog_file = " + p.maillog,
		"maillog_file_prefixes = " + p.base,
		"myhostname = " + hostname,
		"mydomain = relaykeeper.test",
		"myorigin = $myhostname",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"mynetworks_style = host",
		"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
		"relayhost = " + opts.Relayhost,
		// No local delivery at all.
		"mydestination =",
		"local_recipient_maps =",
		"local_transport = error:5.1.1 no local delivery",
		"alias_maps =",
		"alias_database =",
		"biff = no",
		"append_dot_mydomain = no",
		// Tests talk to 127.0.0.0/8 only: no DNS, /etc/hosts at most.
		"smtp_dns_support_level = disabled",
		"smtp_host_lookup = native",
		"smtp_tls_security_level = " + tlsLevel,
		"smtpd_tls_security_level = none",
		// Quick retries.
		"queue_run_delay = 1s",
		"minimal_backoff_time = 1s",
		"maximal_backoff_time = 2s",
		"smtp_connect_timeout = 5s",
		"delay_warning_time = 0h",
		"smtputf8_enable = no",
	}
	main = mergeMainCF(main, opts.MainCF)
	// Every service runs without chroot: a chroot jail would need copies of
	// /etc files inside the queue directory.
	master := []string{
		p.addr + " inet n - n - - smtpd",
		"pickup     unix  n - n 60    1 pickup",
		"cleanup    unix  n - n -     0 cleanup",
		"qmgr       unix  n - n 300   1 qmgr",
		"tlsmgr     unix  - - n 1000? 1 tlsmgr",
		"rewrite    unix  - - n -     - trivial-rewrite",
		"bounce     unix  - - n -     0 bounce",
		"defer      unix  - - n -     0 bounce",
		"trace      unix  - - n -     0 bounce",
		"verify     unix  - - n -     1 verify",
		"flush      unix  n - n 1000? 0 flush",
		"proxymap   unix  - - n -     - proxymap",
		"proxywrite unix  - - n -     1 proxymap",
		"smtp       unix  - - n -     - smtp",
		"relay      unix  - - n -     - smtp",
		"showq      unix  n - n -     - showq",
		"error      unix  - - n -     - error",
		"retry      unix  - - n -     - error",
		"discard    unix  - - n -     - discard",
		"anvil      unix  - - n -     1 anvil",
		"scache     unix  - - n -     1 scache",
		// postlogd writes maillog_file (Postfix >= 3.4).
		"postlog    unix-dgram n - n - 1 postlogd",
	}
	master = append(master, opts.MasterCF...)
	if err := os.WriteFile(filepath.Join(p.confDir, "main.cf"), []byte(strings.Join(main, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.confDir, "master.cf"), []byte(strings.Join(master, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return backdate(filepath.Join(p.confDir, "main.cf"), filepath.Join(p.confDir, "master.cf"))
}

// backdate sets the modification time of files an hour back. Postfix
// reads main.cf again, 0.3 s apart, until the file is two seconds old
// ("pausing to let main.cf finish being written", dict_load_file): every
// Postfix program started in the two seconds after writeConfig, the
// start script's postconf runs first, waited for that, and each instance
// took two seconds longer to start than it needs.
func backdate(files ...string) error {
	then := time.Now().Add(-time.Hour)
	for _, f := range files {
		if err := os.Chtimes(f, then, then); err != nil {
			return err
		}
	}
	return nil
}

// mergeMainCF returns base with each "name = value" line of extra in place
// of base's line for the same parameter, or at the end when base has none.
//
// main.cf may set a parameter twice, the last one counting, but then every
// Postfix program warns "overriding earlier entry" as it starts. With
// maillog_file those warnings go through the postlog socket, whose queue
// holds about ten datagrams (net.unix.max_dgram_qlen); postlogd itself logs
// its own start-up there. On a busy machine the warnings of the master's
// first children filled the queue before postlogd had started: postlogd
// then blocked for ever on its own warnings, and so did every Postfix
// program that logged, smtpd before its greeting and postfix stop.
func mergeMainCF(base, extra []string) []string {
	out := slices.Clone(base)
	at := map[string]int{}
	for i, line := range out {
		if name, ok := mainCFName(line); ok {
			at[name] = i
		}
	}
	for _, line := range extra {
		name, ok := mainCFName(line)
		if i, set := at[name]; ok && set {
			out[i] = line
			continue
		}
		if ok {
			at[name] = len(out)
		}
		out = append(out, line)
	}
	return out
}

// mainCFName returns the parameter a main.cf line sets; ok is false for a
// comment, a blank line or a continuation line.
func mainCFName(line string) (name string, ok bool) {
	if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
		return "", false
	}
	name, _, found := strings.Cut(line, "=")
	name = strings.TrimSpace(name)
	if !found || name == "" || strings.ContainsAny(name, " \t") {
		return "", false
	}
	return name, true
}

func (p *Postfix) start() error {
	out, _, err := runTimeout(60*time.Second, nil, p.bin, "-c", p.confDir, "start")
	if err != nil {
		// A master that half started must not linger.
		p.stopMaster()
		return fmt.Errorf("postfix -c %s start: %w\n%s", p.confDir, err, out)
	}
	if err := waitPort(p.addr, 10*time.Second, nil); err != nil {
		p.stopMaster()
		return err
	}
	return nil
}

// Addr returns the address of the instance's smtpd, as "127.0.0.1:PORT".
func (p *Postfix) Addr() string { return p.addr }

// ConfigDir returns the instance's configuration directory, for postconf -c
// and other Postfix commands.
func (p *Postfix) ConfigDir() string { return p.confDir }

// MailLogFile returns the path of the instance's mail log.
func (p *Postfix) MailLogFile() string { return p.maillog }

// MailLog returns the mail log so far.
func (p *Postfix) MailLog() string {
	b, err := os.ReadFile(p.maillog)
	if err != nil {
		return ""
	}
	return string(b)
}

// WaitLog waits until a mail log line contains substr and returns that line,
// or fails the test after timeout.
func (p *Postfix) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(p.MailLog(), "\n") {
			if strings.Contains(line, substr) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: postfix %s: no %q in the mail log after %v:\n%s", p.addr, substr, timeout, tail(p.MailLog(), 8<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Flush asks Postfix to attempt delivery of every queued message now
// (postqueue -f), and fails the test if it cannot.
func (p *Postfix) Flush() {
	p.t.Helper()
	postqueue, err := lookPath("postqueue")
	if err != nil {
		p.t.Fatalf("harness: postfix: %v", err)
	}
	if out, _, err := runTimeout(30*time.Second, nil, postqueue, "-c", p.confDir, "-f"); err != nil {
		p.t.Fatalf("harness: postqueue -c %s -f: %v\n%s", p.confDir, err, out)
	}
}

// FlushUntil asks Postfix for a queue run (postqueue -f) at once and then
// every second until cond holds, and fails the test, naming what, after
// timeout. A deferred message is retried on its own after the one-second
// backoff, but when the queue manager comes back to a message whose file
// the delivery agent of the last attempt still has locked, as happens on a
// busy machine, it logs "skipped, still being delivered" and puts the
// message off for a fixed 60 seconds; a queue run ignores that time stamp.
func (p *Postfix) FlushUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for next := time.Now(); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("harness: postfix %s: no %s after %v of queue runs:\n%s", p.addr, what, timeout, tail(p.MailLog(), 8<<10))
		}
		if time.Now().After(next) {
			p.Flush()
			next = time.Now().Add(time.Second)
		}
	}
}

// QueueCount returns the number of messages in the instance's queue
// (maildrop, incoming, active, deferred and hold), counted from the queue
// files.
func (p *Postfix) QueueCount() int {
	return p.QueueCountOf("maildrop", "incoming", "active", "deferred", "hold")
}

// WaitEmpty waits until the instance's queue is empty, or fails the test
// after timeout. Postfix logs status=sent before its queue manager removes
// the message, so a count taken right after a delivery may still see it.
func (p *Postfix) WaitEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := p.QueueCount()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: postfix %s: %d messages still queued after %v:\n%s", p.addr, n, timeout, tail(p.MailLog(), 8<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// QueueCountOf counts the messages in the named queues ("deferred",
// "active", ...) of the instance, from the queue files.
func (p *Postfix) QueueCountOf(queues ...string) int {
	n := 0
	for _, q := range queues {
		filepath.WalkDir(filepath.Join(p.spool, q), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
	}
	return n
}

// CPU is the user and system time the instance's processes have used so
// far: the master's own, its reaped children's (which the kernel adds to
// the master's), and that of its children still running. Benchmarks take
// differences of it.
func (p *Postfix) CPU() time.Duration {
	master, ok := p.master()
	if !ok {
		return 0
	}
	total := procTicks(master.pid, true)
	for _, c := range childrenOf(master.pid) {
		total += procTicks(c.pid, false)
	}
	// Clock ticks, 100 a second on Linux.
	return time.Duration(total) * 10 * time.Millisecond
}

// procTicks is pid's utime+stime in clock ticks, with cutime+cstime (its
// reaped children's) when reaped is set.
func procTicks(pid int, reaped bool) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0
	}
	n := 2
	if reaped {
		n = 4
	}
	var t int64
	for _, v := range f[11 : 11+n] {
		x, _ := strconv.ParseInt(v, 10, 64)
		t += x
	}
	return t
}

// Stop stops the instance (postfix stop) and makes sure that its master and
// the master's children are gone, killing them by PID if they linger. It
// can be called more than once.
func (p *Postfix) Stop() {
	p.mu.Lock()
	stopped := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if stopped {
		return
	}
	p.stopMaster()
}

func (p *Postfix) stopMaster() {
	master, ok := p.master()
	if !ok {
		return
	}
	children := childrenOf(master.pid)
	if !p.postfixStop(master, 10*time.Second, p.t.Logf) {
		p.t.Logf("harness: postfix master %d still running; killing it", master.pid)
		syscall.Kill(master.pid, syscall.SIGKILL)
		master.waitGone(5 * time.Second)
	}
	// The master ends its children when it stops; a SIGKILLed one cannot.
	for _, c := range children {
		if c.alive() {
			syscall.Kill(c.pid, syscall.SIGKILL)
		}
	}
}

// postfixStop runs the instance's own "postfix -c DIR stop" and waits up to
// grace for its master to go; it reports whether it went.
func (p *Postfix) postfixStop(master proc, grace time.Duration, logf func(string, ...any)) bool {
	out, _, err := runTimeout(30*time.Second, nil, p.bin, "-c", p.confDir, "stop")
	if err != nil {
		logf("harness: postfix -c %s stop: %v\n%s", p.confDir, err, out)
	}
	return master.waitGone(grace)
}

// master finds the instance's running master: the PID in its pid file, if
// that process runs in the instance's queue directory (the master chdirs
// there), so that a stale pid file never leads to another process.
func (p *Postfix) master() (proc, bool) {
	pid := p.masterPID()
	if pid == 0 {
		return proc{}, false
	}
	st, ok := procStat(pid)
	if !ok || st.state == "Z" {
		return proc{}, false
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != p.spool {
		return proc{}, false
	}
	return proc{pid: pid, start: st.start}, true
}

// masterPID reads the master's PID from its pid file, 0 if none.
func (p *Postfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.spool, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// proc identifies a process by PID and start time, so that a PID reused
// by another process is not mistaken for it.
type proc struct {
	pid   int
	start string
}

func (c proc) alive() bool {
	st, ok := procStat(c.pid)
	return ok && st.state != "Z" && st.start == c.start
}

type stat struct {
	state, start string
	ppid         int
}

// procStat reads the state, parent and start time of pid from /proc.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	// The command name, in parentheses, may contain spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return stat{state: f[0], ppid: ppid, start: f[19]}, true
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []proc {
	entries, _ := os.ReadDir("/proc")
	var kids []proc
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(n); ok && st.ppid == pid {
			kids = append(kids, proc{pid: n, start: st.start})
		}
	}
	return kids
}

// waitGone waits until the process has exited (or is a zombie that nobody
// has reaped yet).
func (c proc) waitGone(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for c.alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
