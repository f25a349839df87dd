package smtpd

import (
	"github.com/relaykeeper/relaykeeper/internal/eightbit"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// utf8Refusal refuses, as store and forward bounces it, a message sent
// with SMTPUTF8 whose header fields hold UTF-8, toward an upstream that
// does not offer SMTPUTF8 (RFC 6531 section 3.2, RFC 6532): it cannot go
// there as it is, and the relay does not rewrite header fields. It
// returns the error that answers the final dot, or nil to send.
func (ss *session) utf8Refusal(w *proxyDraft) error {
	if _, offered := ss.upstream.Extension("SMTPUTF8"); !ss.upMsg.SMTPUTF8 || offered {
		return nil
	}
	head, _, err := w.Content()
	need := false
	if err == nil {
		need, err = eightbit.HeadersNeedUTF8(head)
	}
	if err != nil {
		return ss.storageError(err)
	}
	if !need {
		return nil
	}
	rep := reply.Reply{Code: 554, Enhanced: "5.6.7", Lines: []string{"5.6.7 " + eightbit.UTF8HeadersText}}
	ss.s.opts.MailLog.Proxy(w.ID(), ss.client(), ss.from, len(ss.rcpts), w.Size(), ss.s.opts.Proxy.Addr, maillog.Bounced, rep.String(), ss.msgID)
	return replyError(rep)
}
