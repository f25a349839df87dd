package deliver

import "testing"

func TestSummaryString(t *testing.T) {
	s := Summary{Messages: 4, Sent: 2, Deferred: 1, Failed: 1, Untried: 3}
	if got, want := s.String(), "7 message(s): 2 delivered, 1 deferred, 1 failed, 3 not tried"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if got := s.NotDelivered(); got != 5 {
		t.Errorf("NotDelivered() = %d; want 5", got)
	}
}
