package enforce

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// An encapsulated copy is made for every refused recipient or for none:
// when one cannot be made (here a bad address; in life a full disk), the
// client hears the upstream's refusal and sends again or bounces, so a
// copy already queued for an earlier recipient was a second one for it,
// or a delivered message its sender was told had failed.
func TestRev20aEncapsulateAllOrNone(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	orig := filepath.Join(dir, "original.eml")
	os.WriteFile(orig, []byte("From: Carol <carol@dmarc.example>\r\nTo: dave@gmail.test\r\nSubject: hi\r\n\r\nhello\r\n"), 0o600)
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp,
		RelayAddress: "postmaster@relay.example"}
	out := e.Act(context.Background(), Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "carol@dmarc.example",
		To: []string{"dave@gmail.test", "bad\r\n@gmail.test"}, ContentPath: orig,
		Upstream: upstream("550-5.7.26 Unauthenticated email from dmarc.example is not accepted due to domain's 550-5.7.26 DMARC policy. 550 5.7.26 x1 - gsmtp")})
	if out.Encapsulated || out.Heard.Code/100 == 2 {
		t.Fatalf("Act = encapsulated %v, heard %q; want not encapsulated, the refusal heard", out.Encapsulated, out.Heard.String())
	}
	ents, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range ents {
		env, _, err := sp.Read(en.ID)
		if err == nil && env.From == "postmaster@relay.example" && len(env.Recipients) == 1 {
			t.Errorf("copy %s to %s queued though the refusal is heard (no copy for the other recipient)", en.ID, env.Recipients[0].Addr)
		}
	}
}
