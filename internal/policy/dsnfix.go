package policy

import "strings"

// addressDSN makes an address status (RFC 3463 X.1.Y) in a refusal agree
// with what the refusal names, as Postfix's smtpd does with the codes of
// access-table and policy-service results: a table shared by
// check_sender_access and check_recipient_access says 5.1.1 for both,
// while a sender should hear 5.1.7, and a refused HELO name or client is
// no address at all (X.0.0). check is the fillText check the refusal is
// worded for; any other status comes back as it is.
func addressDSN(enhanced, check string) string {
	class, detail, ok := strings.Cut(enhanced, ".1.")
	if !ok || len(class) != 1 || class[0] < '2' || class[0] > '5' {
		return enhanced
	}
	// The recipient's and the sender's status for each detail, with the
	// unknown ones at the end.
	var sender, recipient string
	switch detail {
	case "1", "4", "6", "7", "3":
		sender = "1.7"
	case "2", "8":
		sender = "1.8"
	default:
		sender = "1.0"
	}
	switch detail {
	case "1", "2", "3", "4", "5", "6":
		recipient = "1." + detail
	case "7":
		recipient = "1.3"
	case "8":
		recipient = "1.2"
	default:
		recipient = "1.0"
	}
	switch check {
	case "check_sender_access":
		return class + "." + sender
	case "check_recipient_access":
		return class + "." + recipient
	}
	return class + ".0.0"
}
