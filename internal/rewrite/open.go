package rewrite

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Maps are the canonical tables by key, as written ("hash:/etc/postfix/canonical"),
// and where a value that is no address, met in a table reloaded after
// start, is logged (nowhere when nil).
type Maps struct {
	Canonical, Sender, Recipient []string
	Log                          *slog.Logger
	// Masquerade is masquerade_domains and its two companions.
	Masquerade Masquerade
	// Classes are canonical_classes and its sender and recipient forms.
	Classes Classes
	// AlwaysBCC, SenderBCC and RecipientBCC are always_bcc,
	// sender_bcc_maps and recipient_bcc_maps (bcc.go).
	AlwaysBCC               string
	SenderBCC, RecipientBCC []string
	// Virtual are virtual_alias_maps (virtual.go).
	Virtual []string
	// Generic are smtp_generic_maps (generic.go).
	Generic []string
}

// KeyError is a table that did not open, named by its configuration key
// so that the error can be placed at its line.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string     { return fmt.Sprintf("%s: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error     { return e.Err }
func (e *KeyError) ConfigKey() string { return e.Key }

// Open opens the tables from set, which reloads them when they change;
// nil (mapping nothing) when none is set.
func Open(set *table.Set, m Maps, delims string) (*Canonical, error) {
	c := &Canonical{Delims: delims, Log: m.Log, bcc: &bcc{always: m.AlwaysBCC}}
	var errs []error
	if a := m.AlwaysBCC; a != "" {
		if _, ok := bccResult(a); !ok {
			errs = append(errs, &KeyError{"rewrite.always_bcc", &valueError{a}})
		}
	}
	if mq := m.Masquerade; len(mq.Domains) > 0 || len(mq.Classes) > 0 || len(mq.Exceptions) > 0 {
		errs = append(errs, mq.check()...)
		c.Masq = &mq
	}
	if cl := m.Classes; len(cl.Canonical)+len(cl.Sender)+len(cl.Recipient) > 0 {
		errs = append(errs, cl.check()...)
		c.Classes = &cl
	}
	for _, l := range []struct {
		key   string
		specs []string
		into  *[]Table
		valid func(string) error
	}{
		{"rewrite.sender_canonical_maps", m.Sender, &c.Sender, ValidResult},
		{"rewrite.recipient_canonical_maps", m.Recipient, &c.Recipient, ValidResult},
		{"rewrite.canonical_maps", m.Canonical, &c.Common, ValidResult},
		{"rewrite.sender_bcc_maps", m.SenderBCC, &c.bcc.sender, ValidBCC},
		{"rewrite.recipient_bcc_maps", m.RecipientBCC, &c.bcc.recipient, ValidBCC},
		{"rewrite.virtual_alias_maps", m.Virtual, &c.virtual, ValidVirtual},
		{"rewrite.smtp_generic_maps", m.Generic, &c.generic, ValidResult},
	} {
		for _, spec := range l.specs {
			t, err := set.Open(spec)
			if err == nil {
				err = t.ValidateResults(l.valid)
			}
			if err != nil {
				errs = append(errs, &KeyError{l.key, err})
				continue
			}
			*l.into = append(*l.into, t)
		}
	}
	if err := errors.Join(errs...); err != nil || !c.Enabled() && !c.HasBCC() && !c.HasVirtual() && !c.HasGeneric() {
		return nil, err
	}
	return c, nil
}
