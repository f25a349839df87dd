package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestLo28BannedThenWelcomedByName: a client banned before the
// administrator welcomelisted it by host name was still refused at connect
// (554, "banned"), and its mail held: the connect-time check and the hold
// knew only the address, and a ban made before an address was listed is
// ignored while it is. A host-name entry holds the same way, in store and
// forward and in proxy mode; a banned client whose name the list does not
// match is refused as before.
func TestLo28BannedThenWelcomedByName(t *testing.T) {
	t.Parallel()
	for _, proxy := range []bool{false, true} {
		name := map[bool]string{false: "store", true: "proxy"}[proxy]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			partner := map[bool]string{false: "127.0.28.11", true: "127.0.28.12"}[proxy]
			stranger := map[bool]string{false: "127.0.28.21", true: "127.0.28.22"}[proxy]
			rev := func(ip string) string {
				p := strings.Split(ip, ".")
				return p[3] + "." + p[2] + "." + p[1] + "." + p[0] + ".in-addr.arpa."
			}
			dns := harness.StartDNS(t, rev(partner)+"  PTR  mx.partner28.test.\nmx.partner28.test.  A  "+partner+"\n"+
				rev(stranger)+"  PTR  mx.stranger28.test.\nmx.stranger28.test.  A  "+stranger+"\n")
			gmail := newFakeGmail(t)
			dir := t.TempDir()
			bans := writeFile(t, dir, "bans", partner+" until=2099-01-01T00:00:00Z reason=\"spam before the list\"\n"+
				stranger+" until=2099-01-01T00:00:00Z reason=\"spam\"\n", 0o644)
			cfg := "[enforce]\nban_delay = \"0s\"\nbans = \"" + bans + "\"\n"
			r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy, config: cfg, welcome: `^mx\.partner28\.test$` + "\n",
				extra: []string{"--client-names-server", dns.Addr()}})
			c, g, err := dialFrom(r.addr(), stranger)
			if err == nil {
				c.Close()
			}
			if g.code() != 554 {
				t.Errorf("banned %s, not listed, greeted %v (%v); want 554", stranger, g, err)
			}
			rcpt := "partner-" + name + "@gmail.test"
			tx, err := sendFrom(r.addr(), partner, "alice@partner28.example", []string{rcpt}, gmailMessage("alice@partner28.example", "lo28 "+name))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("banned %s welcomelisted by name: greeting %v, heard %v (%v); want 220 and 250", partner, tx.Greeting, heardReply(tx), err)
			}
			if !waitFor(20*time.Second, func() bool {
				for _, tx := range gmail.Transactions() {
					if tx.Accepted() && strings.Join(tx.To(), ",") == rcpt {
						return true
					}
				}
				return false
			}) {
				t.Errorf("the welcomelisted client's message was not delivered; holds: %v", fieldsOf(r.events("hold")))
			}
			if h := r.events("hold"); len(h) != 0 {
				t.Errorf("holds %v; want none", fieldsOf(h))
			}
		})
	}
}

// TestLo28EncapsulateMoreRecipientsThanLimit: [enforce]
// encapsulate_rate_limit counts copies, one per refused recipient, in a
// bucket of that many an hour. Through a proxy, Gmail's refusal at the
// final dot is one refusal for all of a message's recipients, all copies
// or none: one refused for more recipients than the limit never fitted in
// the bucket, however long its client had been quiet, so it was never
// encapsulated, and the log said the limit was "reached" with no copy
// made. A client whose bucket is full now has it encapsulated, every copy;
// the copies past the limit are owed, so that its next refused message
// goes back to its sender (copies an hour stay at the limit on average).
func TestLo28EncapsulateMoreRecipientsThanLimit(t *testing.T) {
	t.Parallel()
	const partner = "127.0.28.31"
	// Gmail refuses the partner's every message as spam at the final
	// dot, for all its recipients at once; the copies go.
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, _ string) harness.Response {
			if stage == stData && tx.MailFrom != relayAddress && tx.MailFrom != "" {
				return harness.Response{Reply: gmailUnsolicited}
			}
			return harness.Response{}
		}})
	rcpts := []string{"r1@gmail.test", "r2@gmail.test", "r3@gmail.test"}
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, welcome: partner + "\n",
		config: "[enforce]\nban_delay = \"0s\"\nencapsulate_rate_limit = 2\n"})
	tx, err := sendFrom(r.addr(), partner, "alice@partner28.example", rcpts, gmailMessage("alice@partner28.example", "lo28 many"))
	if err != nil || tx.Final.code() != 250 {
		t.Errorf("3 recipients, limit 2, client quiet till now: heard %v (%v); want 250 (encapsulated); events %v",
			heardReply(tx), err, fieldsOf(enforceEvents(r, partner)))
	}
	if got := len(r.events("encapsulate")); got != 3 {
		t.Fatalf("%d copies (events %v); want 3", got, fieldsOf(enforceEvents(r, partner)))
	}
	// The bucket owes a copy now: the next refusal goes to its sender.
	tx, err = sendFrom(r.addr(), partner, "alice@partner28.example", rcpts[:1], gmailMessage("alice@partner28.example", "lo28 next"))
	if err != nil || tx.Final.code() != 550 {
		t.Errorf("the next message, the bucket owing a copy: heard %v (%v); want Gmail's 550", heardReply(tx), err)
	}
	if got := len(r.events("encapsulate")); got != 3 {
		t.Errorf("%d copies in all; want still 3 (%v)", got, fieldsOf(enforceEvents(r, partner)))
	}
}

// TestLo28FullDiskBackoffGrows: on a full disk a deferral's envelope
// cannot be written. The back-off was kept in memory but the attempt
// count was not: each attempt read the count on disk again, so the
// back-off stayed at the step after the last one written (every 2 s here,
// for good, where it should double each time), and the envelope, once the
// disk had room, recorded that old count plus one. The count now goes on
// in memory: the attempts' gaps double, and the first envelope written
// afterwards has the count.
func TestLo28FullDiskBackoffGrows(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		needFor(t, "a tmpfs spool", fmt.Errorf("needs root"))
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "lo28", mnt).CombinedOutput(); err != nil {
		needFor(t, "a tmpfs", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, _ string) harness.Response {
		if st == harness.StageEndOfData {
			return harness.Response{Reply: "451 4.3.0 try again later"}
		}
		return harness.Response{}
	}})
	spool := filepath.Join(mnt, "spool")
	cfg := filepath.Join(t.TempDir(), "relaykeeper.toml")
	if err := os.WriteFile(cfg, []byte("[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"60s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1", "--no-bounces", "--config", cfg)
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, "Subject: lo28\r\n\r\nbody\r\n")
	if err != nil {
		t.Fatalf("send: %v %v", tx, err)
	}
	id := strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")
	attempts := func() map[int]time.Time {
		at := map[int]time.Time{}
		for _, e := range r.events("delivery") {
			if n, err := strconv.Atoi(e.Get("attempt")); err == nil && e.Get("id") == id && e.Get("result") == "deferred" {
				at[n] = e.Time
			}
		}
		return at
	}
	if !waitFor(10*time.Second, func() bool { return !attempts()[1].IsZero() }) {
		t.Fatalf("no first deferral of %s; events %v", id, fieldsOf(r.events("delivery")))
	}
	fill(t, filepath.Join(mnt, "filler"))
	// Back-offs of 1, 2, 4, 8 s (less a tenth's jitter) from the first
	// attempt: the fourth comes about 7 s after it, the fifth 8 s later.
	if !waitFor(25*time.Second, func() bool { return !attempts()[4].IsZero() }) {
		t.Fatalf("attempts on the full disk %v; want the fourth within 25 s (the back-off doubling)", attempts())
	}
	at := attempts()
	if gap := at[4].Sub(at[3]); gap < 3*time.Second {
		t.Errorf("attempt 3 at %v, 4 at %v: %v apart; want about 4 s", at[3], at[4], gap)
	}
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	if !waitFor(20*time.Second, func() bool { return !attempts()[5].IsZero() }) {
		t.Fatalf("attempts once the disk had room %v; want the fifth", attempts())
	}
	time.Sleep(200 * time.Millisecond)
	env, err := os.ReadFile(filepath.Join(spool, id+".envelope"))
	if err != nil || !strings.Contains(string(env), "\nX-Relaykeeper-Attempts: 5\r\n") && !strings.Contains(string(env), "\nX-Relaykeeper-Attempts: 5\n") {
		t.Errorf("envelope after the fifth attempt, the disk with room (%v):\n%s\nwant X-Relaykeeper-Attempts: 5", err, env)
	}
}
