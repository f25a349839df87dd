package policy

import "fmt"

// everyoneTrusted returns where ("FILE:LINE") Options.Trusted trusts every
// client on the Internet while nothing else stands between them and any
// destination: clients from anywhere may connect (RemoteClients) and no
// address verifier decides what they may send. "" otherwise. E-MailRelay's
// guide trusts "*.*.*.*" with a verifier that refuses remote recipients
// to clients that did not log in (seed 001), which stays allowed.
func (e *Engine) everyoneTrusted() string {
	if e.opts.Trusted == nil || !e.opts.RemoteClients || e.opts.Verifier != nil {
		return ""
	}
	if w, ok := e.opts.Trusted.(interface{ EveryoneTrusted() string }); ok {
		return w.EveryoneTrusted()
	}
	return ""
}

// everyoneTrustedError refuses such a configuration at start-up, as
// mynetworks = ["0.0.0.0/0"] is.
func (e *Engine) everyoneTrustedError() error {
	if where := e.everyoneTrusted(); where != "" {
		return fmt.Errorf("%s: this \"server none\" line trusts every client on the Internet to relay anywhere without a login "+
			"(an open relay, with --remote-clients and no --address-verifier): list the networks you trust", where)
	}
	return nil
}
