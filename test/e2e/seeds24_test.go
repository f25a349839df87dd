package e2e

// The seed documents' examples run as written (the seeds24 checker's):
// what earlier seed tests did not already cover.

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSeeds24FilterDummyRefused: FILTER_README turns its simple content
// filter on with "-o content_filter=filter:dummy", where "filter" is a
// pipe(8) service whose next hop Postfix ignores. relaykeeper reaches a
// content filter (content_filter, or a FILTER action of an access table or
// header check) by SMTP at the next hop, so it took the line and sent every
// message to a host named "dummy", port 25, where it stayed deferred. It is
// refused at its line, pointing to --filter "pipe:...", which runs that
// filter; an SMTP filter as the advanced example writes it still starts.
func TestSeeds24FilterDummyRefused(t *testing.T) {
	t.Parallel()
	const why = `"filter:dummy" names a pipe(8) service (FILTER_README's simple content filter), which relaykeeper runs before accepting the message, as --filter "pipe:`
	cfg23Refused(t, cfg23Config(t, "[routing]\ncontent_filter = \"filter:dummy\"\n"), ":7: routing.content_filter: "+why)

	dir := t.TempDir()
	access := writeFile(t, dir, "client_access", "127.0.0.2 FILTER filter:dummy\n", 0o644)
	cfg23Refused(t, cfg23Config(t, "[policy]\nclient_restrictions = [\"check_client_access hash:"+access+"\"]\n"),
		":7: policy.client_restrictions: \"check_client_access hash:"+access+"\": "+access+":1: \"FILTER filter:dummy\": "+why)
	checks := writeFile(t, dir, "header_checks", "/^Subject: scan me/ FILTER filter:dummy\n", 0o644)
	cfg23Refused(t, cfg23Config(t, "[policy]\nheader_checks = \"pcre:"+checks+"\"\n"),
		":7: policy.header_checks: "+checks+":1: "+why)

	// The advanced example's SMTP filter, and Postfix's FILTER foo:bar.
	for _, body := range []string{
		"[routing]\ncontent_filter = \"scan:localhost:10025\"\n",
		"[policy]\nheader_checks = \"pcre:" + writeFile(t, dir, "foobar", "/^Subject: scan me/ FILTER foo:bar\n", 0o644) + "\"\n",
	} {
		conf := cfg23Config(t, body)
		if out, errOut, code := runBinary(t, harness.Binary(t), "", "--check", "--config", conf); code != 0 {
			t.Errorf("relaykeeper --check with %q: exit %d, %s%s; want 0", body, code, out, errOut)
		}
	}
}
