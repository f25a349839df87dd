package deliver

import "testing"

func TestSummaryErr(t *testing.T) {
	tests := []struct {
		sum  Summary
		want string
	}{
		{Summary{Messages: 2, Sent: 2}, ""},
		{Summary{Messages: 2, Sent: 1, Deferred: 1, LastReply: "451 4.3.2 later"},
			"1 of 2 message(s) not delivered; last reply: 451 4.3.2 later"},
		{Summary{Untried: 3}, "3 of 3 message(s) not delivered"},
	}
	for _, tt := range tests {
		got := ""
		if err := tt.sum.Err(); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%+v.Err() = %q; want %q", tt.sum, got, tt.want)
		}
	}
}
