package pop3

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// poplibScript is a session by Python's poplib over STLS: it prints what
// the server said as JSON.
const poplibScript = `
import json, poplib, ssl, sys
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
p = poplib.POP3(host, port, timeout=20)
out = {"capa_before": sorted(p.capa())}
p.stls(context=ctx)
out["cipher"] = p.sock.cipher()[1]
p.user("alice")
out["pass"] = p.pass_("secret").decode()
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
out["uidl2"] = p.uidl(2).decode()
out["top"] = [l.decode() for l in p.top(1, 1)[1]]
out["retr"] = [l.decode() for l in p.retr(1)[1]]
out["dele"] = p.dele(1).decode()
out["dele2"] = p.dele(2).decode()
out["quit"] = p.quit().decode()
print(json.dumps(out))
`

// TestPoplib runs a real client, Python's poplib, over STLS against the
// server: LIST, UIDL, TOP, RETR, DELE, and QUIT removes the files.
func TestPoplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		harness.Missing(t, "python3 not found")
	}
	dir := t.TempDir()
	id1, id2 := addMessage(t, dir, msg1), addMessage(t, dir, msg2)
	id3 := addMessage(t, dir, msg2)
	cfg, certFile := testCert(t)
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users, TLSConfig: cfg, RequireTLS: true})
	host, port, _ := net.SplitHostPort(addr)

	cmd := exec.Command(python, "-c", poplibScript, host, port, certFile)
	outb, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("poplib: %v\n%s", err, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("poplib output %q: %v", outb, err)
	}
	if got["cipher"] == "" {
		t.Error("no TLS")
	}
	delete(got, "cipher")
	list := func(a ...string) []any {
		out := []any{}
		for _, s := range a {
			out = append(out, s)
		}
		return out
	}
	size := len(msg1) + 2*len(msg2)
	want := map[string]any{
		"capa_before": list("AUTH-RESP-CODE", "IMPLEMENTATION", "PIPELINING", "RESP-CODES", "STLS", "TOP", "UIDL"),
		"pass":        fmt.Sprintf("+OK maildrop locked and ready: 3 messages (%d octets)", size),
		"stat":        []any{3.0, float64(size)},
		"list":        list(fmt.Sprintf("1 %d", len(msg1)), fmt.Sprintf("2 %d", len(msg2)), fmt.Sprintf("3 %d", len(msg2))),
		"uidl":        list("1 "+id1, "2 "+id2, "3 "+id3),
		"uidl2":       "+OK 2 " + id2,
		"top":         list("Received: from x", "Subject: one", "", "body one"),
		"retr":        list(strings.Split(strings.TrimSuffix(msg1, "\r\n"), "\r\n")...),
		"dele":        "+OK message 1 deleted",
		"dele2":       "+OK message 2 deleted",
		"quit":        "+OK bye (2 messages removed, 1 left)",
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("poplib session diff (-got +want):\n%s", d)
	}
	for _, id := range []string{id1, id2} {
		for _, f := range []string{id + ".envelope", id + ".content"} {
			if exists(filepath.Join(dir, f)) {
				t.Errorf("%s still there after DELE and QUIT", f)
			}
		}
	}
	if !exists(filepath.Join(dir, id3+".envelope")) {
		t.Errorf("message 3 removed")
	}
}
