package filter

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRev22PipeManyRecipients: a pipe: filter runs with the filtered
// envelope in one environment entry, for sendmail's hand-back. Written out
// whole, the recipients of a message with 1,000 long addresses (RCPTMAX's
// default) passed Linux's 128 KiB limit on one entry: exec failed (E2BIG)
// and the message was refused 451 at every try. The entry is a digest now.
func TestRev22PipeManyRecipients(t *testing.T) {
	c, e := message(t, testContent)
	env := &spool.Envelope{ID: "6B0252D2F906FE64", From: "alice@example.com", BodyType: "8bit",
		Client: "127.0.0.1:49068", Arrival: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	for i := range 1000 {
		env.Recipients = append(env.Recipients, spool.Recipient{
			Addr: fmt.Sprintf("%s%04d@example.net", strings.Repeat("r", 180), i), Status: spool.Pending})
	}
	if err := os.WriteFile(e, env.Marshal(), 0o640); err != nil {
		t.Fatal(err)
	}
	f := mustParse(t, "pipe:"+script(t, "ok", "cat >/dev/null"), Server, 10*time.Second)
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Errorf("Run with 1,000 long recipients = %v; want ok", r)
	}
}
