package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// runAs runs bin as the user uid, in group gid and the groups given, and
// returns its standard output and error together and its exit status.
func runAs(t *testing.T, uid, gid uint32, groups []uint32, stdin, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v as %d: %v", bin, args, uid, err)
	}
	return out.String(), 0
}

// docs/sendmail.md: "The spool that tmpfiles.d makes is mode 0750; for
// other local users, make it 0770 and put them in the relaykeeper group".
// Done so, a local user's sendmail said nothing and exited 0, but left
// the message's files its own, in its own group, 0640 (and made the
// spool's .quarantine its own too): the relay, running as its own user,
// could not read the envelope ("envelope unreadable: ... permission
// denied"), never sent the message and quarantined it at its next start.
// A member of the spool's group now gives the files it makes that group,
// to read and write (the relay locks a content file it opens read-write).
func TestOps24SendmailByAMemberOfTheSpoolsGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Missing(t, "root, to run sendmail as another user")
	}
	const relayID, userID = 4343, 4242 // the relay's user and group; a local user
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil { // t.TempDir's are 0700: let the users in
			t.Fatal(err)
		}
	}
	spool := filepath.Join(base, "spool")
	if err := os.Mkdir(spool, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(spool, relayID, relayID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(spool, 0o770); err != nil { // past the umask
		t.Fatal(err)
	}
	conf := filepath.Join(base, "relaykeeper.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[spool]\ndir = %q\n", spool)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A copy the users may run: the harness builds the binary in a
	// directory only root may enter.
	bin := filepath.Join(base, "relaykeeper")
	data, err := os.ReadFile(harness.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sendmail := filepath.Join(base, "sendmail")
	if err := os.Symlink(bin, sendmail); err != nil {
		t.Fatal(err)
	}
	out, code := runAs(t, userID, userID, []uint32{relayID}, "Subject: from a user\n\nhello\n",
		sendmail, "-C", conf, "-f", "user@example.com", "you@example.net")
	if code != 0 {
		t.Fatalf("sendmail as a member of the spool's group: exit %d, %q", code, out)
	}
	// The relay's user reads the message and takes its lock, as a
	// delivery does.
	out, code = runAs(t, relayID, relayID, nil, "", bin, "queue", "hold", "--all", "--spool-dir", spool)
	if code != 0 || !strings.Contains(out, "held (ready -> held)") {
		t.Errorf("queue hold --all as the relay's user: exit %d, %q; want the user's message held", code, out)
	}
	if fi, err := os.Stat(filepath.Join(spool, ".quarantine")); err != nil || fi.Sys().(*syscall.Stat_t).Gid != relayID || fi.Mode().Perm()&0o070 != 0o070 {
		t.Errorf(".quarantine: %v %v; want the relay's group to use it", fi.Mode(), err)
	}
}

// docs/auth.md: "A --client-auth, --server-auth or --pop-auth file that
// every user of the machine may read is taken, with a warning at start and
// from --check". --check warned for --server-auth and --client-auth but
// said nothing for --pop-auth: it opened that file without a logger.
func TestOps24CheckWarnsOfAReadablePOPSecretsFile(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "pop.auth")
	if err := os.WriteFile(secrets, []byte("server plain alice secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secrets, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	out, errOut, code := runBinary(t, harness.Binary(t), "", "--check", "--no-smtp", "--pop", "--pop-auth", secrets,
		"--pop-no-delete", "--spool-dir", filepath.Join(dir, "spool"))
	if code != 0 || !strings.Contains(errOut, "readable by every user") || !strings.Contains(errOut, secrets) {
		t.Errorf("--check with a --pop-auth file of mode 0644: exit %d, stdout %q, stderr %q; want 0 and the warning naming the file", code, out, errOut)
	}
}

// docs/queue.md lists a message with several envelope files (made by hand
// or a script) once, naming them, and "delete ID..." removes messages for
// good. Deleting one said "deleted (was ready)" and exited 0, but removed
// only the envelope it had claimed and the content: the other envelope
// stayed, listed as a damaged held message.
func TestOps24DeleteMessageWithSeveralEnvelopes(t *testing.T) {
	spool, id, env := ops24Submitted(t)
	bin := harness.Binary(t)
	if err := os.WriteFile(filepath.Join(spool, id+".envelope.held"), env, 0o640); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runBinary(t, bin, "", "queue", "delete", id, "--spool-dir", spool)
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("queue delete: exit %d, %q %q", code, out, errOut)
	}
	left, _ := filepath.Glob(filepath.Join(spool, id+"*"))
	if len(left) != 0 {
		t.Errorf("queue delete %s said %q but left %q", id, out, left)
	}
	if out, _, _ := runBinary(t, bin, "", "queue", "--spool-dir", spool); !strings.Contains(out, "Mail queue is empty") {
		t.Errorf("queue list after the delete:\n%s\nwant an empty queue", out)
	}
}

// The same message (two envelope files, made by hand): "queue hold" picked
// one, said "held (ready -> held)" and renamed it over the other, so that
// the administrator's other envelope (another recipient) was gone without
// a word, while queue list had said "remove all but one to keep it". Hold,
// release, retry and flush now refuse such a message and change nothing.
func TestOps24HoldRefusesSeveralEnvelopes(t *testing.T) {
	spool, id, env := ops24Submitted(t)
	bin := harness.Binary(t)
	other := bytes.ReplaceAll(env, []byte("b@example.net"), []byte("c@example.net"))
	held := filepath.Join(spool, id+".envelope.held")
	if err := os.WriteFile(held, other, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"hold", "release", "retry"} {
		out, errOut, code := runBinary(t, bin, "", "queue", cmd, id, "--spool-dir", spool)
		if code != 1 || !strings.Contains(out, "several envelope files") {
			t.Errorf("queue %s of a message with two envelope files: exit %d, %q %q; want it refused, exit 1", cmd, code, out, errOut)
		}
	}
	if b, err := os.ReadFile(held); err != nil || !bytes.Equal(b, other) {
		t.Errorf("the hand-made %s: %v, now\n%s", held, err, b)
	}
	if b, err := os.ReadFile(filepath.Join(spool, id+".envelope")); err != nil || !bytes.Equal(b, env) {
		t.Errorf("%s.envelope: %v, now\n%s", id, err, b)
	}
}

// ops24Submitted puts a message in a new spool with relaykeeper submit and
// returns the spool, the message's id and its envelope.
func ops24Submitted(t *testing.T) (string, string, []byte) {
	t.Helper()
	spool := t.TempDir()
	out, errOut, code := runBinary(t, harness.Binary(t), "Subject: x\n\nbody\n", "submit", "--spool-dir", spool, "--from", "a@example.com", "b@example.net")
	id := strings.TrimSpace(out)
	if code != 0 || id == "" {
		t.Fatalf("submit: exit %d, %q %q", code, out, errOut)
	}
	env, err := os.ReadFile(filepath.Join(spool, id+".envelope"))
	if err != nil {
		t.Fatal(err)
	}
	return spool, id, env
}
