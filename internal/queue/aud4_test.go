package queue

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestAud4FutureIDDoesNotHang: a command naming an id that is in no
// spool waited for a young message's files "until ServedWindow after the
// id's time"; for an id whose time lies ahead (a mistyped first digit,
// 7B15... for 6B15..., or AAAA...), that was months or years: queue show
// and queue delete hung instead of saying "no such message".
func TestAud4FutureIDDoesNotHang(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	future := fmt.Sprintf("%08X00000001", time.Now().Add(365*24*time.Hour).Unix())
	done := make(chan struct{})
	var showErr error
	var res []Result
	go func() {
		defer close(done)
		_, showErr = Show(s, future, false)
		res = Apply(s, Delete, []string{future})
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("queue show/delete %s (an id a year ahead) still waiting after 15 s", future)
	}
	if !errors.Is(showErr, spool.ErrNotFound) {
		t.Errorf("Show(%s): %v, want not found", future, showErr)
	}
	if len(res) != 1 || res[0].Outcome != NotFound {
		t.Errorf("Apply(delete %s) = %+v, want not found", future, res)
	}
}
