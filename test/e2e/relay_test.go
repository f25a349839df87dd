package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// relay is a relaykeeper daemon started by a test, restartable on the same
// port, spool and switches.
type relay struct {
	t     *testing.T
	bin   string
	args  []string // everything but --port
	port  int
	host  string // where clients connect
	spool string

	mu    sync.Mutex
	proc  *harness.Proc
	procs []*harness.Proc // every run, for the logs of killed ones
}

// startRelay runs relaykeeper with args and "--port P" on a free port, and
// waits until it listens. host is the address clients use (127.0.0.1 unless
// the test listens elsewhere). A port taken meanwhile by someone else is
// retried with another.
func startRelay(t *testing.T, host string, args ...string) *relay {
	t.Helper()
	return startRelayWith(t, host, harness.Binary(t), args...)
}

// startRelayWith is startRelay with another command in front, such as
// unshare(1) running the relay in a mount namespace of its own; "--port P"
// is still added at the end of args.
func startRelayWith(t *testing.T, host, bin string, args ...string) *relay {
	t.Helper()
	r := &relay{t: t, bin: bin, args: args, host: host, spool: flagValue(args, "--spool-dir")}
	for attempt := 0; ; attempt++ {
		r.port = harness.FreePort(t)
		err := r.start()
		if err == nil {
			return r
		}
		if attempt == 2 {
			t.Fatalf("relaykeeper %v: %v", args, err)
		}
		t.Logf("retrying on another port: %v", err)
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func (r *relay) start() error {
	args := append(slices.Clone(r.args), "--port", strconv.Itoa(r.port))
	p := harness.Start(r.t, r.bin, args...)
	r.mu.Lock()
	r.proc = p
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for !listensOn(p.PID(), r.port) {
		if !p.Running() {
			code, _ := p.Wait(time.Second)
			return fmt.Errorf("exited with status %d before listening on port %d; stderr:\n%s", code, r.port, p.Stderr())
		}
		if time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("not listening on port %d after 15s", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// restart starts the relay again on the same port, spool and switches,
// after it has exited.
func (r *relay) restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart relaykeeper: %v", err)
	}
}

func (r *relay) addr() string { return fmt.Sprintf("%s:%d", r.host, r.port) }

func (r *relay) current() *harness.Proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// kill sends SIGKILL and waits until the process is gone.
func (r *relay) kill() {
	r.t.Helper()
	p := r.current()
	p.Kill()
	if _, err := p.Wait(10 * time.Second); err == nil || strings.Contains(err.Error(), "still running") {
		r.t.Fatalf("relaykeeper (pid %d) after SIGKILL: %v; want killed", p.PID(), err)
	}
}

// stop sends SIGTERM and checks that the relay exits 0 within timeout.
func (r *relay) stop(timeout time.Duration) {
	r.t.Helper()
	p := r.current()
	p.Signal(syscall.SIGTERM)
	code, err := p.Wait(timeout)
	if err != nil || code != 0 {
		r.t.Errorf("relaykeeper after SIGTERM: exit %d, %v; want 0, nil", code, err)
	}
}

// stderr returns the standard error of every run of the relay, in order.
func (r *relay) stderr() string {
	r.mu.Lock()
	procs := slices.Clone(r.procs)
	r.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		b.WriteString(p.Stderr())
	}
	return b.String()
}

// events returns the mail-log lines of every run, parsed, optionally only
// those of one event.
func (r *relay) events(event string) []*maillog.Entry { return mailEvents(r.stderr(), event) }

// waitEvent waits until a mail-log line of event satisfies match.
func (r *relay) waitEvent(event string, timeout time.Duration, match func(*maillog.Entry) bool) *maillog.Entry {
	r.t.Helper()
	var found *maillog.Entry
	ok := waitFor(timeout, func() bool {
		for _, e := range r.events(event) {
			if match == nil || match(e) {
				found = e
				return true
			}
		}
		return false
	})
	if !ok {
		r.t.Fatalf("no mail-log %q line as wanted after %v; stderr:\n%s", event, timeout, r.stderr())
	}
	return found
}

// mailEvents parses the mail-log lines in a process's output, skipping the
// diagnostic log's lines.
func mailEvents(out, event string) []*maillog.Entry {
	var es []*maillog.Entry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "time=") {
			continue
		}
		e, err := maillog.Parse(line)
		if err != nil || (event != "" && e.Event != event) {
			continue
		}
		es = append(es, e)
	}
	return es
}

// unsent returns the relay's delivery lines so far whose result is not
// sent.
func (r *relay) unsent() []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events("delivery") {
		if e.Get("result") != "sent" {
			out = append(out, e)
		}
	}
	return out
}

// deliveries returns the delivery lines for one recipient (with or without
// angle brackets) and result ("" for any).
func deliveries(es []*maillog.Entry, to, result string) []*maillog.Entry {
	to = "<" + strings.Trim(to, "<>") + ">"
	var out []*maillog.Entry
	for _, e := range es {
		if e.Event == "delivery" && e.Get("to") == to && (result == "" || e.Get("result") == result) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listensOn reports whether process pid, or a process it started (a
// wrapper such as unshare(1) forks), has a listening TCP socket on port.
// Any listener on the port is not enough: between FreePort's close and
// the relay's bind, another test may take the port, and the relay, which
// then cannot bind, looked ready while the test's first dial reached the
// other listener ("connection reset by peer", the relay's stderr empty).
func listensOn(pid, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 10 && fs[3] == "0A" && strings.HasSuffix(fs[1], want) {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false
	}
	for _, p := range processTree(pid, 4) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		for _, fd := range fds {
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p, fd.Name())); err == nil && inodes[link] {
				return true
			}
		}
	}
	return false
}

// processTree is pid and its descendants, depth levels down.
func processTree(pid, depth int) []int {
	pids := []int{pid}
	if depth == 0 {
		return pids
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(data)) {
		if c, err := strconv.Atoi(f); err == nil {
			pids = append(pids, processTree(c, depth-1)...)
		}
	}
	return pids
}

// writeConfig writes a configuration file with fast retries (and body
// appended) and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	text := "[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n" + body
	p := filepath.Join(t.TempDir(), "relaykeeper.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Spool inspection.

// spoolFiles lists the message files in a spool directory by id: each
// value is the sorted list of the file suffixes present ("content",
// "envelope", "envelope.bad", ...). Hidden entries (.quarantine) are left
// out; quarantined lists those separately.
func spoolFiles(t *testing.T, dir string) map[string][]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read spool: %v", err)
	}
	m := map[string][]string{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		id, suffix, _ := strings.Cut(e.Name(), ".")
		m[id] = append(m[id], suffix)
	}
	for id := range m {
		slices.Sort(m[id])
	}
	return m
}

// quarantined lists the files in the spool's .quarantine directory.
func quarantined(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, ".quarantine"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("read quarantine: %v", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "journal-") && strings.Contains(e.Name(), ".torn-") {
			// A copy of a journal tail a crash cut short, never
			// acknowledged, kept in case a disk zeroed an acknowledged
			// record's end (docs/spool.md): no message set aside.
			continue
		}
		names = append(names, e.Name())
	}
	return names
}

// idsIn returns the ids whose files are exactly want (e.g. content and
// envelope for a ready message).
func idsIn(files map[string][]string, want ...string) []string {
	slices.Sort(want)
	var ids []string
	for id, got := range files {
		if slices.Equal(got, want) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// checkSpoolEmpty fails the test if dir still holds a message file after a
// few seconds.
func checkSpoolEmpty(t *testing.T, dir string) {
	t.Helper()
	// The mail log's sent line comes just before the files are removed.
	var files map[string][]string
	if !waitFor(5*time.Second, func() bool { files = spoolFiles(t, dir); return len(files) == 0 }) {
		t.Errorf("spool %s holds %v; want no message files", dir, files)
	}
}

// waitSpool waits until the spool's files satisfy cond and returns them.
func waitSpool(t *testing.T, dir string, timeout time.Duration, what string, cond func(map[string][]string) bool) map[string][]string {
	t.Helper()
	var files map[string][]string
	if !waitFor(timeout, func() bool { files = spoolFiles(t, dir); return cond(files) }) {
		t.Fatalf("spool %s after %v holds %v; want %s", dir, timeout, files, what)
	}
	return files
}

// envelope is an envelope file read as lines of "Key: value".
type envelope struct {
	lines []string
}

func readEnvelope(t *testing.T, path string) envelope {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read envelope: %v", err)
	}
	s := string(b)
	if !strings.HasSuffix(s, "\r\n") || strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
		t.Errorf("envelope %s: lines do not all end in CRLF:\n%q", path, s)
	}
	return envelope{lines: strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")}
}

// all returns the values of every line with key.
func (e envelope) all(key string) []string {
	var out []string
	for _, l := range e.lines {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			out = append(out, strings.TrimPrefix(v, " "))
		}
	}
	return out
}

func (e envelope) get(key string) string {
	if v := e.all(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (e envelope) String() string { return strings.Join(e.lines, "\n") }

// rcptStatus returns the X-Relaykeeper-Rcpt lines by address.
func (e envelope) rcptStatus() map[string]string {
	m := map[string]string{}
	for _, v := range e.all("X-Relaykeeper-Rcpt") {
		f := strings.SplitN(v, " ", 3)
		if len(f) >= 2 {
			m[f[1]] = v
		}
	}
	return m
}

// readAnyEnvelope reads a message's envelope in whatever state it is,
// retrying over a rename in progress.
func readAnyEnvelope(t *testing.T, dir, id string) (state string, env envelope) {
	t.Helper()
	for range 100 {
		for _, s := range []string{"envelope", "envelope.busy", "envelope.bad"} {
			b, err := os.ReadFile(filepath.Join(dir, id+"."+s))
			if err != nil {
				continue
			}
			return s, envelope{lines: strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no envelope for %s in %s; spool: %v", id, dir, spoolFiles(t, dir))
	return "", envelope{}
}

// waitEnvelope waits until a message's envelope, read in whatever state it
// is, satisfies cond, and returns the last one read. A claimed (.busy)
// envelope is in a forwarder's hands and may not be up to date yet.
func waitEnvelope(t *testing.T, dir, id string, timeout time.Duration, cond func(state string, env envelope) bool) (string, envelope) {
	t.Helper()
	var state string
	var env envelope
	waitFor(timeout, func() bool {
		state, env = readAnyEnvelope(t, dir, id)
		return cond(state, env)
	})
	return state, env
}
