package policy

import "errors"

// ErrNoDNSBL is SetDNSBL's answer when there is no --dnsbl check to turn.
var ErrNoDNSBL = errors.New("no DNSBL check configured (--dnsbl)")

// SetDNSBL turns the --dnsbl check on or off at run time (E-MailRelay's
// admin "dnsbl start" / "dnsbl stop"); without --dnsbl (or without an
// Engine) it changes nothing and returns ErrNoDNSBL.
func (e *Engine) SetDNSBL(on bool) error {
	if e == nil || e.opts.DNSBL == nil {
		return ErrNoDNSBL
	}
	e.dnsblOff.Store(!on)
	return nil
}

// DNSBLEnabled reports a --dnsbl check that "dnsbl stop" has not turned
// off.
func (e *Engine) DNSBLEnabled() bool { return e != nil && e.opts.DNSBL != nil && !e.dnsblOff.Load() }
