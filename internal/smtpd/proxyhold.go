package smtpd

import (
	"cmp"
	"io"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// proxyHold keeps a proxied message that is to be held (a HOLD from an
// access table, the policy service or header_checks, or a milter's
// quarantine): "accept the message and keep it on hold" holds in proxy
// mode too. Sending it upstream would deliver what the administrator
// wanted to look at first. It goes into the spool as store and forward
// keeps it, held, durably; the client hears the relay's own 250 (the
// upstream, which has the sender and the recipients, is sent RSET when
// the transaction ends), and `queue release` sends it on, to the upstream.
func (ss *session) proxyHold(d *proxyDraft, env *spool.Envelope) error {
	body, _, err := d.Content()
	if err != nil {
		return ss.storageError(err)
	}
	w, err := ss.s.opts.Spool.Create(ss.s.opts.Now())
	if err != nil {
		return ss.storageError(err)
	}
	if _, err = io.Copy(w, body); err == nil {
		if err = w.Prepare(env); err == nil {
			err = w.Commit(true)
		}
	}
	if err != nil {
		w.Abort()
		return ss.storageError(err)
	}
	ss.s.opts.MailLog.Hold(w.ID(), ss.client(), ss.from, cmp.Or(ss.why, "held at receipt"))
	ss.s.opts.MailLog.Accept(w.ID(), ss.client(), ss.from, len(ss.rcpts), w.Size(), env.AuthID, ss.msgID)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + w.ID()}
}
