package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestReview13LogFormatJSONWithMailLog: with --log-format json and no
// [log] mail_log, the mail log's lines share the --log-file; docs promise
// one JSON object per line, so they come wrapped as {"msg": "mail log",
// "line": ...}, the line itself unchanged. A reviewer found text lines
// mixed into the JSON stream.
func TestReview13LogFormatJSONWithMailLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "relaykeeper.log")
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	harness.Start(t, harness.Binary(t), "--as-server", "--log", "--log-format", "json",
		"--log-file", logFile, "--interface", addr, "--spool-dir", filepath.Join(dir, "spool"))
	harness.WaitPort(t, addr, 10*time.Second)
	mustSend(t, addr, "alice@example.org", []string{"bob@example.net"}, message("json log"))
	waitForText(t, logFile, `"msg":"mail log"`)
	waitForText(t, logFile, " disconnect ")
	data, _ := os.ReadFile(logFile)
	var accepts int
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil || obj["level"] == nil || obj["time"] == nil {
			t.Errorf("line %q is not a JSON record with time and level (%v)", line, err)
			continue
		}
		if l, _ := obj["line"].(string); obj["msg"] == "mail log" && strings.Contains(l, " accept id=") {
			accepts++
		}
	}
	if accepts != 1 {
		t.Errorf("%d mail-log accept records; want 1:\n%s", accepts, data)
	}
}
