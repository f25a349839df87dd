package route

import "testing"

// TestRev28OtherAccount: a destination says whether its sessions log in
// with an account other than the relay's own: a client account selector,
// or a sender's own login (sender_dependent_authentication).
func TestRev28OtherAccount(t *testing.T) {
	for _, tt := range []struct {
		dst  Destination
		want bool
	}{
		{Destination{Key: "smtp.example.net:587"}, false},
		{Destination{Key: "smtp.example.net:587"}.WithAccount("sel"), true},
		{Destination{Key: "smtp.example.net:587" + loginMark + "a@example.org"}, true},
		{Destination{Key: "smtp.example.net:587" + loginMark + "a@example.org"}.WithAccount("sel"), true},
	} {
		if got := tt.dst.OtherAccount(); got != tt.want {
			t.Errorf("Destination{Key: %q}.OtherAccount() = %v; want %v", tt.dst.Key, got, tt.want)
		}
	}
}
