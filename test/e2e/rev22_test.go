package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRev22SimpleFilterReinjects: a FILTER_README-style script that
// re-injects its filtered message with relaykeeper's sendmail, the way
// real scripts are written: with a progress line on its standard output
// (which Postfix's pipe(8) only puts in a bounce), with sendmail's output
// sent to /dev/null, or captured in a variable. The hand-back went to
// sendmail's standard output only: the noise made every message fail
// (451 for ever), and the other two threw the filtered message away and
// let the original pass unfiltered. Each must reach the smarthost once,
// filtered.
func TestRev22SimpleFilterReinjects(t *testing.T) {
	t.Parallel()
	for name, reinject := range map[string]string{
		"noise on stdout":  "echo \"scanning in.$$\"\n$SENDMAIL \"$@\" <out.$$",
		"stdout discarded": "$SENDMAIL \"$@\" <out.$$ >/dev/null 2>&1",
		"stdout captured":  "res=$($SENDMAIL \"$@\" <out.$$)",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sink := harness.NewFakeSMTP(t, harness.Script{})
			dir := t.TempDir()
			spool := t.TempDir()
			conf := writeFile(t, dir, "relaykeeper.toml", fmt.Sprintf("[spool]\ndir = %q\n", spool), 0o644)
			sendmail := filepath.Join(sendmailNames(t), "sendmail")
			inspect := filepath.Join(dir, "inspect")
			if err := os.Mkdir(inspect, 0o755); err != nil {
				t.Fatal(err)
			}
			script := writeFile(t, dir, "filter", `#!/bin/sh
SENDMAIL="`+sendmail+` -C `+conf+` -i"
trap "rm -f in.$$ out.$$" 0 1 2 3 15
cd `+inspect+` || exit 75
cat >in.$$ || exit 75
{ echo "X-Filtered: yes"; cat in.$$; } >out.$$
`+reinject+`
exit $?
`, 0o755)
			r := startRelay(t, "127.0.0.1", "--config", conf, "--as-server", "--interface", "127.0.0.1",
				"--forward-to", sink.Addr(), "--forward-on-disconnect", "--poll", "1",
				"--filter", "pipe:"+script+" -f ${sender} -- ${recipient}")
			mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("through the filter"))
			sink.WaitTransactions(t, 1, 15*time.Second)
			time.Sleep(2 * time.Second) // a second copy, if any
			got := sink.Transactions()
			if len(got) != 1 {
				t.Fatalf("the smarthost got %d messages; want 1", len(got))
			}
			if data := string(got[0].Data); !strings.Contains(data, "X-Filtered: yes") || !strings.Contains(data, "Subject: through the filter") {
				t.Errorf("the smarthost got the message unfiltered:\n%s", data)
			}
		})
	}
}
