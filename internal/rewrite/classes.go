package rewrite

import (
	"fmt"
	"slices"
	"strings"
)

// Classes are Postfix's canonical_classes, sender_canonical_classes and
// recipient_canonical_classes: which addresses each kind of canonical
// table maps. Empty lists are Postfix's defaults: every class for
// canonical_maps, the sender's two for sender_canonical_maps, the
// recipient's two for recipient_canonical_maps. A site that must not
// touch the header (a signed message, a mailing list's From) says
// canonical_classes = ["envelope_sender", "envelope_recipient"].
type Classes struct {
	Canonical, Sender, Recipient []string
}

var (
	senderClasses    = []string{"envelope_sender", "header_sender"}
	recipientClasses = []string{"envelope_recipient", "header_recipient"}
)

// check refuses a class the list's maps cannot have, as postconf(5)
// names them, under the list's configuration key.
func (cl *Classes) check() []error {
	var errs []error
	for _, l := range []struct {
		key   string
		given []string
		valid []string
	}{
		{"rewrite.canonical_classes", cl.Canonical, masqClasses},
		{"rewrite.sender_canonical_classes", cl.Sender, senderClasses},
		{"rewrite.recipient_canonical_classes", cl.Recipient, recipientClasses},
	} {
		for _, c := range l.given {
			if !slices.Contains(l.valid, c) {
				errs = append(errs, &KeyError{l.key, fmt.Errorf("%q; want %s", c, orList(l.valid))})
			}
		}
	}
	return errs
}

// orList is "a, b or c".
func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// common reports whether canonical_maps map an address of class.
func (cl *Classes) common(class string) bool {
	return cl == nil || len(cl.Canonical) == 0 || slices.Contains(cl.Canonical, class)
}

// first reports whether the sender's or recipient's own maps map an
// address of class (the class already tells which of the two applies).
func (cl *Classes) first(class string) bool {
	if cl == nil {
		return true
	}
	list := cl.Recipient
	if slices.Contains(senderClasses, class) {
		list = cl.Sender
	}
	return len(list) == 0 || slices.Contains(list, class)
}
