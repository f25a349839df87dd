package policy

import "testing"

// TestTab18AddressDSN: the X.1.Y status of a table's reply agrees with
// what is refused, as with Postfix's smtpd (observed with Postfix 3.7).
func TestTab18AddressDSN(t *testing.T) {
	for _, c := range []struct{ in, check, want string }{
		{"5.1.1", "check_sender_access", "5.1.7"},
		{"5.1.2", "check_sender_access", "5.1.8"},
		{"5.1.10", "check_sender_access", "5.1.0"},
		{"4.1.8", "check_sender_access", "4.1.8"},
		{"5.1.8", "check_recipient_access", "5.1.2"},
		{"5.1.7", "check_recipient_access", "5.1.3"},
		{"5.1.1", "check_recipient_access", "5.1.1"},
		{"5.1.1", "check_helo_access", "5.0.0"},
		{"4.1.1", "check_client_access", "4.0.0"},
		{"5.7.1", "check_sender_access", "5.7.1"},
		{"5.2.1", "check_helo_access", "5.2.1"},
		{"", "check_helo_access", ""},
	} {
		if got := addressDSN(c.in, c.check); got != c.want {
			t.Errorf("addressDSN(%q, %q) = %q, want %q", c.in, c.check, got, c.want)
		}
	}
}

// TestTab18TableTextPrintable: a tab in a table's reply text (where a
// continuation line was joined) goes out as a space, as from Postfix.
func TestTab18TableTextPrintable(t *testing.T) {
	d, err := TableAction("REJECT first part\tsecond\x01part")
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != "first part second part" {
		t.Errorf("text %q", d.Text)
	}
}
