package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps22UnitKeepsProcessMetrics: under the /proc the shipped systemd
// unit gives the relay (ProtectProc=, ProcSubset=), /metrics still has the
// process collector's series, process_start_time_seconds among them, which
// dashboards and rules use for uptime and restarts. With ProcSubset=pid
// the relay saw no /proc/stat, whose boot time the collector needs, and
// the series was silently missing from every scrape of the installed
// relay. The relay runs here in a PID and mount namespace of its own, with
// /proc mounted with the options the unit's settings stand for.
func TestOps22UnitKeepsProcessMetrics(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		needFor(t, "a /proc of the systemd unit's kind", errors.New("needs root"))
	}
	_, err := exec.LookPath("unshare")
	needFor(t, "a /proc of the systemd unit's kind", err)
	unit, err := os.ReadFile("../../etc/relaykeeper.service")
	if err != nil {
		t.Fatal(err)
	}
	opts := []string{"remount"}
	for line := range strings.SplitSeq(string(unit), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch {
		case k == "ProcSubset" && v == "pid":
			opts = append(opts, "subset=pid")
		case k == "ProtectProc" && v != "default":
			opts = append(opts, "hidepid="+v)
		}
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	startRelayWith(t, "127.0.0.1", "unshare", "-p", "-f", "--kill-child", "-m", "--propagation", "private", "--mount-proc",
		"sh", "-c", fmt.Sprintf(`mount -o %s /proc && exec "$0" "$@"`, strings.Join(opts, ",")), harness.Binary(t),
		"--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--admin-http", httpAddr)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	body := scrape(t, "http://"+httpAddr+"/metrics")
	for _, name := range []string{"process_start_time_seconds", "process_resident_memory_bytes", "process_open_fds", "relaykeeper_up"} {
		if series(body, name) <= 0 {
			t.Errorf("/proc mounted -o %s (etc/relaykeeper.service): no %s in /metrics", strings.Join(opts, ","), name)
		}
	}
}
