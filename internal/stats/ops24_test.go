package stats

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// docs/queue.md: the diagnostic log's lines are skipped, "so relaykeeper
// stats /var/log/relaykeeper/relaykeeper.log works whatever --log-file
// collects". With --log-format json, the mail log's lines are in that file
// wrapped as {"time", "level", "msg": "mail log", "line"}
// (docs/operations.md), and stats skipped every one of them: "no mail-log
// lines".
func TestOps24ReadsTheMailLogInAJSONLogFile(t *testing.T) {
	var file strings.Builder
	file.WriteString(`{"time":"2026-11-22T02:26:25.1Z","level":"INFO","msg":"relaykeeper started","pid":1}` + "\n")
	maillog.JSONLines(&file).Write([]byte(
		"2026-11-22T02:26:26.378Z connect client=127.0.0.1:49068 listener=127.0.0.1:2525\n" +
			"2026-11-22T02:26:26.385Z accept id=6B0252D2F906FE64 client=127.0.0.1:49068 from=<a@example.com> nrcpt=2 size=372 auth=-\n"))
	a := NewAggregator()
	if err := a.Read(strings.NewReader(file.String())); err != nil {
		t.Fatal(err)
	}
	r := a.Report(10)
	if r.Received.Messages != 1 || r.Connections != 1 || r.Skipped != 1 {
		t.Errorf("from a JSON log file: received %d, connections %d, skipped %d; want 1, 1 and 1 (the diagnostic line)\n%s",
			r.Received.Messages, r.Connections, r.Skipped, file.String())
	}
}
