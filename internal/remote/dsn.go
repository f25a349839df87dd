package remote

import (
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/xtext"
)

// DSNMailParams formats a client's RET and ENVID (RFC 3461 section 4) as
// MAIL parameters for Message.MailParams; envID is the decoded value.
func DSNMailParams(ret, envID string) []string {
	var p []string
	if ret != "" {
		p = append(p, "RET="+ret)
	}
	if envID != "" {
		p = append(p, "ENVID="+xtext.Encode(envID))
	}
	return p
}

// DSNRcptParams formats a recipient's NOTIFY ("SUCCESS,DELAY") and ORCPT
// ("rfc822;address", the address decoded) as RCPT parameters for one
// entry of Message.RcptParams.
func DSNRcptParams(notify, orcpt string) []string {
	var p []string
	if notify != "" {
		p = append(p, "NOTIFY="+notify)
	}
	if orcpt != "" {
		typ, addr, _ := strings.Cut(orcpt, ";")
		enc := xtext.Encode
		if strings.EqualFold(typ, "utf-8") {
			enc = xtext.EncodeUTF8Addr // RFC 6533 section 3
		}
		p = append(p, "ORCPT="+typ+";"+enc(addr))
	}
	return p
}
