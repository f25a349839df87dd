package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// v6ban23NetnsEnv marks the copy of the test binary that runs in a network
// namespace of its own, where the IPv6 documentation addresses can be
// bound on lo without touching the machine's network.
const v6ban23NetnsEnv = "RELAYKEEPER_V6BAN23_NETNS"

// inOwnNetns runs test name again in a new network namespace (unshare -n)
// and reports false; in that copy, with lo up and addrs bound to it, it
// reports true.
func inOwnNetns(t *testing.T, name string, addrs ...string) bool {
	t.Helper()
	if os.Getenv(v6ban23NetnsEnv) == "" {
		unshare, err := exec.LookPath("unshare")
		if err != nil || os.Geteuid() != 0 {
			harness.Missing(t, "a network namespace of its own (root and unshare(1)) to bind IPv6 client addresses")
		}
		cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run", "^"+name+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), v6ban23NetnsEnv+"=1", "RELAYKEEPER_BIN="+harness.Binary(t))
		out, err := cmd.CombinedOutput()
		t.Logf("in its own network namespace:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
			t.Fatalf("%s in its own network namespace: %v", name, err)
		}
		return false
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		harness.Missing(t, "ip(8) (iproute2) to bind IPv6 client addresses")
	}
	cmds := [][]string{{"link", "set", "lo", "up"}}
	for _, a := range addrs {
		cmds = append(cmds, []string{"-6", "addr", "add", a, "dev", "lo", "nodad"})
	}
	for _, c := range cmds {
		if out, err := exec.Command(ip, c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	return true
}

// TestV6ban23RelayBansIPv6ClientsNetwork: Gmail refuses an IPv6 client's
// spam; the relay bans the client's /64 ([enforce] ban_ipv6_prefix_length,
// 64 by default), since the client holds every address of it. Another
// address of the /64 is refused at connect, naming the network; an address
// inside that /64 welcomelisted after the ban is served (a welcomelisted
// address there before the ban keeps the ban to the spammer's address:
// TestV6ban23BanNet), as is the next /64. "bans remove" of an address inside the network lifts the network's
// ban and says so. Before, the ban was of 2001:db8:1:2::7 alone, and the
// spammer went on from 2001:db8:1:2::8.
func TestV6ban23RelayBansIPv6ClientsNetwork(t *testing.T) {
	const (
		relayIP   = "2001:db8:1:2::1"
		spammer   = "2001:db8:1:2::7"
		rotated   = "2001:db8:1:2::8"
		welcomed  = "2001:db8:1:2::99"
		elsewhere = "2001:db8:1:3::1"
	)
	if !inOwnNetns(t, "TestV6ban23RelayBansIPv6ClientsNetwork",
		relayIP+"/64", spammer+"/64", rotated+"/64", welcomed+"/64", elsewhere+"/64") {
		return
	}
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	dir := t.TempDir()
	welcome := writeFile(t, dir, "welcomelist", "192.0.2.1\n", 0o644)
	cfg := "[smtp]\nremote_clients = true\n[policy]\nrelay_domains = [\"gmail.test\"]\n[enforce]\nban_delay = \"0s\"\n"
	r := startRelay(t, "["+relayIP+"]", "--interface", relayIP, "--domain", relayDomain, "--spool-dir", t.TempDir(),
		"--config", writeFile(t, dir, "relaykeeper.toml", cfg, 0o644),
		"--welcomelist", welcome,
		"--as-server", "--forward-to", gmail.Addr(), "--forward-on-disconnect")

	tx, err := sendFrom(r.addr(), spammer, "alice@clean.example", []string{"spam@gmail.test"}, gmailMessage("alice@clean.example", "spam"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send from %s: %v %+v", spammer, err, tx)
	}
	ban := r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == spammer })
	if ban.Get("prefix") != "2001:db8:1:2::/64" {
		t.Errorf("ban line %v; want prefix=2001:db8:1:2::/64", ban.Fields)
	}
	data, _ := os.ReadFile(enforceFile(r, "bans"))
	if !strings.Contains(string(data), "\n2001:db8:1:2::/64 until=") || !strings.Contains(string(data), " client="+spammer) {
		t.Errorf("ban file:\n%s\nwant a ban of 2001:db8:1:2::/64 for client %s", data, spammer)
	}

	// The spammer's next address is refused at connect.
	_, greet, _ := dialFrom(r.addr(), rotated)
	if want := "554 5.7.1 " + relayDomain + ": " + rotated + " (in banned network 2001:db8:1:2::/64) is banned until"; !strings.HasPrefix(greet.String(), want) {
		t.Errorf("greeting to %s = %q; want %q...", rotated, greet, want)
	}
	// A neighbour welcomelisted now, and the next /64, are not.
	if err := os.WriteFile(welcome, []byte("# a neighbour of the spammer's\n"+welcomed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	greeted := func(ip string) (reply, error) {
		c, greet, err := dialFrom(r.addr(), ip)
		if c != nil {
			c.Close()
		}
		return greet, err
	}
	waitFor(10*time.Second, func() bool { g, _ := greeted(welcomed); return g.code() == 220 })
	for _, ip := range []string{welcomed, elsewhere} {
		if greet, err := greeted(ip); err != nil || greet.code() != 220 {
			t.Errorf("greeting to %s = %q (%v); want 220", ip, greet, err)
		}
	}
	if greet, _ := greeted(rotated); greet.code() != 554 {
		t.Errorf("greeting to %s once %s is welcomelisted = %q; want 554", rotated, welcomed, greet)
	}

	// Lifting the ban by an address inside the network says which
	// network it lifts, and the relay lets the network in again.
	out, stderr, code := runBinary(t, harness.Binary(t), "", "bans", "remove", rotated, "--spool-dir", r.spool)
	if want := "2001:db8:1:2::/64 no longer banned (it held " + rotated + ")\n"; code != 0 || out != want {
		t.Errorf("bans remove %s: exit %d, %q %q; want %q", rotated, code, out, stderr, want)
	}
	unban := r.waitEvent("unban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("prefix") == "2001:db8:1:2::/64" })
	if unban.Get("client") != spammer || unban.Get("reason") != "lifted" {
		t.Errorf("unban line %v; want client=%s reason=lifted", unban.Fields, spammer)
	}
	c, greet, err := dialFrom(r.addr(), rotated)
	if err != nil || greet.code() != 220 {
		t.Errorf("greeting to %s after the unban = %q (%v); want 220", rotated, greet, err)
	}
	if c != nil {
		c.Close()
	}
}
