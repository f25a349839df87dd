package spool

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBB25ORCPTBlankRoundTrip: an ORCPT is kept decoded, and its xtext may
// decode to blanks outside quotes ("sp+20ace", RFC 3461 section 4.2). The
// Dsn line was cut at the first of them when read back: the ORCPT lost its
// tail, and a tail that read "NOTIFY=..." replaced the recipient's NOTIFY.
// Blanks at either end of an ORCPT or ENVID were trimmed.
func TestBB25ORCPTBlankRoundTrip(t *testing.T) {
	e := testEnvelope()
	e.Recipients = []Recipient{
		{Addr: "a@example.net", Status: Pending, ORCPT: "rfc822;sp ace@example.net"},
		{Addr: "b@example.net", Status: Pending, Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;x NOTIFY=NEVER@example.net"},
		{Addr: "c@example.net", Status: Pending, ORCPT: "rfc822;y NOTIFY=NEVER"},
		{Addr: `"d e"@example.net`, Status: Pending, Notify: "NEVER", ORCPT: `rfc822;"d e" ORCPT=f@example.net`},
		{Addr: "g@example.net", Status: Pending, Notify: "DELAY"},
		{Addr: "h@example.net", Status: Pending, ORCPT: "rfc822; h@example.net "},
	}
	e.EnvID = " lead trail "
	got, err := Unmarshal(bytes.NewReader(e.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e.Recipients, got.Recipients); diff != "" {
		t.Errorf("recipients read back differ (-written +read):\n%s", diff)
	}
	if got.EnvID != e.EnvID {
		t.Errorf("EnvID read back = %q; want %q", got.EnvID, e.EnvID)
	}
}
