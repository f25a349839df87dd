package spool

import (
	"slices"
	"testing"
)

// TestExpandRecipientsSuccess: the members of an alias of several lose
// NOTIFY=SUCCESS (a success notice each would tell the sender who is on
// the alias), keeping FAILURE and DELAY; an alias of one keeps it.
func TestExpandRecipientsSuccess(t *testing.T) {
	expand := func(a string) ([]string, bool, error) {
		switch a {
		case "team@example.com":
			return []string{"a@example.net", "b@example.net"}, true, nil
		case "one@example.com":
			return []string{"c@example.net"}, true, nil
		}
		return []string{a}, false, nil
	}
	got, err := ExpandRecipients([]Recipient{
		{Addr: "team@example.com", Status: Pending, Notify: "SUCCESS,FAILURE"},
		{Addr: "one@example.com", Status: Pending, Notify: "SUCCESS"},
	}, expand)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, r := range got {
		notes = append(notes, r.Addr+" "+r.Notify+" "+r.ORCPT)
	}
	want := []string{"a@example.net FAILURE rfc822;team@example.com", "b@example.net FAILURE rfc822;team@example.com",
		"c@example.net SUCCESS rfc822;one@example.com"}
	if !slices.Equal(notes, want) {
		t.Errorf("got %q; want %q", notes, want)
	}
	for in, want := range map[string]string{"SUCCESS": "NEVER", "": "", "NEVER": "NEVER", "SUCCESS, DELAY": "DELAY"} {
		if got := withoutSuccess(in); got != want {
			t.Errorf("withoutSuccess(%q) = %q; want %q", in, got, want)
		}
	}
}
