package e2e

import (
	"fmt"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPolicyServicePostgrey: greylisting with Debian's postgrey as the
// policy service (check_policy_service inet:...). The first attempt hears
// postgrey's DEFER_IF_PERMIT in Postfix's words; the retry after the delay
// is let through, with the X-Greylist header postgrey asks to PREPEND
// before the relay's Received header.
func TestPolicyServicePostgrey(t *testing.T) {
	t.Parallel()
	bin := harness.Need(t, "postgrey")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	grp, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	harness.Start(t, bin, "--inet="+addr, "--dbdir="+t.TempDir(), "--delay=2", "--user="+me.Username,
		"--group="+grp.Name, "--hostname=policy.test", "--auto-whitelist-clients=0")
	harness.WaitPort(t, addr, 20*time.Second)

	sink := harness.StartSink(t, harness.SinkOptions{})
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
recipient_restrictions = ["check_policy_service inet:%s", "permit_mynetworks", "reject"]
`, addr))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)

	a := tryMessage(t, r.addr(), "127.0.0.1", "alice@example.org", "bob@example.net")
	// 4.2.0 is postgrey's choice for a Postfix that sends etrn_domain
	// (2.3 and later), as the mail logs of Postfix with postgrey show.
	want := "450 4.2.0 <bob@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html"
	if a.rcpt.String() != want {
		t.Fatalf("first RCPT = %q; want postgrey's greylisting %q", a.rcpt, want)
	}
	time.Sleep(3 * time.Second) // postgrey's --delay
	a = tryMessage(t, r.addr(), "127.0.0.1", "alice@example.org", "bob@example.net")
	if a.rcpt.code() != 250 || a.final.code() != 250 {
		t.Fatalf("retry after the delay: RCPT %q, end of data %q; want 250, 250", a.rcpt, a.final)
	}
	sink.WaitCount(t, 1, 10*time.Second)
	if data := sink.Messages()[0].Data; !strings.HasPrefix(data, "X-Greylist: delayed ") ||
		!strings.Contains(data, "by postgrey-") || !strings.Contains(data, "\nReceived: from ") {
		t.Errorf("the message upstream begins %q; want postgrey's X-Greylist header before the Received header", head(data))
	}
}
