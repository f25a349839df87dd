package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevS15VirtualAliasLoop: a loop in virtual_alias_maps (ops -> team ->
// ops) made the relay accept the message with 250 and send it upstream to
// ops@example.com as the client wrote it, with nothing in the log; an
// alias past Postfix's 1000 addresses went upstream unexpanded too.
// Postfix's cleanup does not accept such a message ("unreasonable
// virtual_alias_maps map nesting -- message not accepted"): the client
// hears 451 4.3.0 and keeps it, nothing goes upstream, and the mail log
// says why; the sendmail command fails the same way.
func TestRevS15VirtualAliasLoop(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	cfg := "[rewrite]\nvirtual_alias_maps = [\"inline:{ ops@example.com=team@example.com, team@example.com=ops@example.com }\"]\n"
	r := opsRelay(t, up.Addr(), cfg, "--forward-on-disconnect")
	tx, err := sendMail(r.addr(), "sender@example.org", []string{"ops@example.com"}, message("loop"))
	if err == nil || len(tx.Final) != 1 || !strings.HasPrefix(tx.Final[0], "451 4.3.0 ") {
		t.Fatalf("a message to an alias that loops: %v, final reply %q; want 451 4.3.0", err, tx.Final)
	}
	r.waitEvent("reject", 10*time.Second, func(e *maillog.Entry) bool {
		return e.Get("stage") == "data" && strings.Contains(e.Get("reply"), "451 4.3.0")
	})
	// A recipient no alias names still goes.
	mustSend(t, r.addr(), "sender@example.org", []string{"carol@example.net"}, message("fine"))
	if to := up.WaitTransactions(t, 1, 15*time.Second)[0].To(); len(to) != 1 || to[0] != "carol@example.net" {
		t.Errorf("upstream got %v; want carol@example.net only (nothing for the loop)", to)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(up.Transactions()); n != 1 {
		t.Errorf("upstream got %d transactions; want 1", n)
	}

	// The sendmail command: refused, nothing queued.
	names := sendmailNames(t)
	dir := t.TempDir()
	conf := writeFile(t, dir, "relaykeeper.toml", "[spool]\ndir = \""+t.TempDir()+"\"\n"+cfg, 0o644)
	if _, errOut, code := runBinary(t, filepath.Join(names, "sendmail"), "Subject: cron\n\nhello\n", "-C", conf, "-i",
		"-f", "alice@example.org", "ops@example.com"); code == 0 || !strings.Contains(errOut, "virtual") {
		t.Errorf("sendmail to an alias that loops: exit %d, stderr %q; want a failure naming virtual_alias_maps", code, errOut)
	}
}

// TestRevS15AliasExpansionTooLarge: 1,000 recipients (team+1@ ...
// team+1000@) of an alias of 40 people make 40,000, whose envelope the
// relay acknowledged with 250 and journaled as a record its own start-up
// then took for damage. The client now hears 552 5.5.3 at the end of DATA;
// the same alias for a few recipients still goes.
func TestRevS15AliasExpansionTooLarge(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	var members []string
	for i := range 40 {
		members = append(members, fmt.Sprintf("person%02d@example.net", i))
	}
	cfg := "recipient_delimiter = \"+\"\n[rewrite]\nvirtual_alias_maps = [\"inline:{ { team@example.com=" + strings.Join(members, ", ") + " } }\"]\n"
	r := opsRelay(t, up.Addr(), cfg, "--forward-on-disconnect")
	var rcpts []string
	for i := range 1000 {
		rcpts = append(rcpts, fmt.Sprintf("team+%d@example.com", i))
	}
	tx, err := sendMail(r.addr(), "sender@example.org", rcpts, message("everyone"))
	if err == nil || len(tx.Final) != 1 || !strings.HasPrefix(tx.Final[0], "552 5.5.3 ") {
		t.Fatalf("40,000 recipients after expansion: %v, final reply %q; want 552 5.5.3", err, tx.Final)
	}
	mustSend(t, r.addr(), "sender@example.org", []string{"team+1@example.com"}, message("few"))
	if to := up.WaitTransactions(t, 1, 15*time.Second)[0].To(); len(to) != 40 || to[0] != "person00+1@example.net" {
		t.Errorf("upstream got %d recipients (%.3v); want the 40 members", len(to), to)
	}
}

// TestRevS15VirtualReloadBadValue: a virtual_alias_maps entry that is no
// list of addresses is refused at start, but one written while the relay
// runs (a typo: "sales@example.com sales-team") made it warn and send the
// message upstream to sales@example.com unexpanded, an address that
// exists only as an alias. Now the message waits (451 4.3.0) until the
// table is fixed, as a loop does.
func TestRevS15VirtualReloadBadValue(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	tbl := writeFile(t, dir, "virtual", "sales@example.com alice@example.net\n", 0o644)
	r := opsRelay(t, up.Addr(), "[rewrite]\nvirtual_alias_maps = [\"texthash:"+tbl+"\"]\n", "--forward-on-disconnect")
	os.WriteFile(tbl, []byte("sales@example.com sales-team\n"), 0o644)
	hups := sighups(r)
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(5*time.Second, func() bool { return sighups(r) > hups }) {
		t.Fatal("the relay did not reload")
	}
	tx, err := sendMail(r.addr(), "sender@example.org", []string{"sales@example.com"}, message("typo"))
	if err == nil || len(tx.Final) != 1 || !strings.HasPrefix(tx.Final[0], "451 4.3.0 ") {
		t.Errorf("a message to an alias whose entry is \"sales-team\": %v, final reply %q; want 451 4.3.0", err, tx.Final)
	}
	time.Sleep(300 * time.Millisecond)
	if txs := up.Transactions(); len(txs) != 0 {
		t.Errorf("upstream got %v; want nothing", txs[0].To())
	}
}
