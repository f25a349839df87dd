package policy

import "strings"

// loginMismatch is Postfix's reject_sender_login_mismatch: the sender must be
// owned by the login, and a sender that has an owner needs its login.
func (e *Engine) loginMismatch(req *Request) Decision {
	if e.opts.SenderOwners == nil || req.Sender == "" {
		return Decision{}
	}
	owners, ok := e.opts.SenderOwners.Owners(req.Sender)
	if !ok {
		owners = nil
	}
	const rule = "reject_sender_login_mismatch"
	switch {
	case owners == nil && req.AuthID == "":
		return Decision{}
	case owners == nil:
		return reject(553, "5.7.1", "<"+req.Sender+">: Sender address rejected: not owned by user "+req.AuthID, rule)
	case req.AuthID == "":
		return reject(553, "5.7.1", "<"+req.Sender+">: Sender address rejected: not logged in", rule)
	}
	for _, o := range owners {
		// Without regard to case, as Postfix (strcasecmp) and
		// docs/auth.md have it.
		if strings.EqualFold(o, req.AuthID) {
			return Decision{}
		}
	}
	return reject(553, "5.7.1", "<"+req.Sender+">: Sender address rejected: not owned by user "+req.AuthID, rule)
}
