package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// journalRecords returns the offset and the bytes of each record in a
// journal segment (docs/spool.md: "RK" TYPE 0, LENGTH, CRC, PAYLOAD).
func journalRecords(b []byte) (offs []int, recs [][]byte) {
	for at := 0; at+12 <= len(b); {
		n := 12 + int(binary.BigEndian.Uint32(b[at+4:]))
		if at+n > len(b) {
			break
		}
		offs, recs = append(offs, at), append(recs, b[at:at+n])
		at += n
	}
	return offs, recs
}

// TestSalvageFromCommandLine: messages acknowledged and served from the
// journal, the relay killed, and one bit of the first message's record
// damaged on disk. Before, the messages recorded after the damage were
// only in the segment copied to quarantine, and no command could bring
// them back. Now the next start sets them aside in quarantine, held; queue
// quarantine lists them, queue restore and queue release put them back,
// and they are delivered.
func TestSalvageFromCommandLine(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	var spool string
	var want, wantSubjects []string
	for round := 0; round < 5 && len(want) == 0; round++ {
		spool = t.TempDir()
		// No forwarding before the kill: a poll once an hour.
		r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--poll", "3600",
			"--interface", "127.0.0.1", "--spool-dir", spool)
		var ids []string
		for i := range 3 {
			tx, err := sendMail(r.addr(), "salvage@example.org", []string{"bob@example.net"},
				fmt.Sprintf("Subject: salvage %d\n\nbody %d\n", i, i))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as "))
		}
		r.kill()
		// The segment holding the last message: damage the first of
		// them it holds; those after it in it have no other copy.
		segs, _ := filepath.Glob(filepath.Join(spool, ".journal", "*.log"))
		for _, seg := range segs {
			b, _ := os.ReadFile(seg)
			if !strings.Contains(string(b), ids[2]) {
				continue
			}
			offs, recs := journalRecords(b)
			for i, rec := range recs {
				k := slices.IndexFunc(ids, func(id string) bool { return strings.Contains(string(rec), id) })
				if k < 0 {
					continue
				}
				b[offs[i]+len(rec)-3] ^= 0x01 // in the content: the checksum fails
				os.WriteFile(seg, b, 0o640)
				for j, id := range ids[k+1:] {
					if m, _ := filepath.Glob(filepath.Join(spool, id+".*")); len(m) == 0 {
						want = append(want, id)
						wantSubjects = append(wantSubjects, fmt.Sprintf("Subject: salvage %d\r\n", k+1+j))
					}
				}
				break
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("in five rounds no message after another was served from the journal at the kill")
	}

	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--poll", "1",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	out, errOut, code := opsCmd(t, "", "queue", "quarantine", "--spool-dir", spool)
	for _, id := range want {
		if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "held") {
			t.Fatalf("queue quarantine (exit %d) does not list %s held:\n%s%s", code, id, out, errOut)
		}
	}
	// A message before the damage may be delivered (on a slow machine it
	// was written out before the kill); those after it wait.
	for _, tx := range up.Transactions() {
		for _, subj := range wantSubjects {
			if strings.Contains(string(tx.Data), subj) {
				t.Fatalf("a message found after the damage (%s) was delivered before anyone restored it", strings.TrimSpace(subj))
			}
		}
	}
	before := len(up.Transactions())
	for _, id := range want {
		for _, cmd := range []string{"restore", "release"} {
			if out, errOut, code := opsCmd(t, "", "queue", cmd, "--spool-dir", spool, id); code != 0 {
				t.Fatalf("queue %s %s: exit %d\n%s%s", cmd, id, code, out, errOut)
			}
		}
	}
	txs := up.WaitTransactions(t, before+len(want), 20*time.Second)
	for _, tx := range txs {
		if !strings.Contains(string(tx.Data), "Subject: salvage ") {
			t.Errorf("delivered %q", tx.Data)
		}
	}
	t.Logf("%d messages set aside and delivered", len(want))
	r.stop(10 * time.Second)
}
