package e2e

import (
	"strings"
	"testing"
)

// TestEnforceCLITest: "relaykeeper enforce test REPLY" prints the action,
// the rule, and what the client would hear, for replies given as Gmail
// sends them (several lines).
func TestEnforceCLITest(t *testing.T) {
	t.Parallel()
	fill := func(s string) string {
		s = strings.ReplaceAll(s, "{id}", "a1si1234567pgb.12")
		return strings.ReplaceAll(s, "{domain}", "bad.example")
	}
	spam, dmarc, nouser := fill(gmailUnsolicited), fill(gmailDMARC), fill(gmailNoSuchUser)
	spf := fill(gmailReply("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [{domain} 30]. ... temporarily rate limited. ..."))
	tests := []struct{ name, reply, want string }{
		{"spam", spam, "ban (rule gmail-unsolicited)\nclient hears: " + joinedReply(spam) + " (unchanged)\n"},
		{"dmarc", dmarc, "encapsulate (rule gmail-dmarc)\n" +
			"client hears, once the encapsulated copy is sent: " + encapsulatedHeard("5.7.26") + "\n" +
			"client hears, if it cannot be sent: " + joinedReply(dmarc) + " (unchanged)\n"},
		{"spf domain", spf, "block-domain (rule gmail-spf-domain-rate, domain bad.example)\nclient hears: " + permanentHeard(spf)[0] + "\n"},
		{"no such user", nouser, "none (rule gmail-no-such-user)\nclient hears: " + joinedReply(nouser) + " (unchanged)\n"},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, "enforce", "test", tt.reply)
		if code != 0 || out != tt.want || errOut != "" {
			t.Errorf("enforce test (%s): exit %d\nstdout %q\nstderr %q\nwant exit 0, stdout %q", tt.name, code, out, errOut, tt.want)
		}
	}
}
