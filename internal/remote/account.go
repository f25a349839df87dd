package remote

import (
	"context"
	"fmt"
)

// Accounts is an Authenticator with several accounts, one for each client
// account selector (E-MailRelay's ClientAccountSelector: the fifth word of
// a "client" line, named by a message's envelope). Dial logs in with the
// account that its context names (WithAccount), or the default one
// (selector ""), which may be no login at all.
type Accounts interface {
	Authenticator
	// Account returns the account for selector: nil means no login
	// ("client plain = = SELECTOR"); ok is false when there is no line
	// for selector.
	Account(selector string) (a Authenticator, ok bool)
}

type accountKey struct{}

// WithAccount makes the sessions that Dial opens under ctx log in with
// the account for selector, when their Options.Auth is an Accounts. An
// empty selector is the default account.
func WithAccount(ctx context.Context, selector string) context.Context {
	if selector == "" {
		return ctx
	}
	return context.WithValue(ctx, accountKey{}, selector)
}

// useAccount puts in opts the account that ctx names.
func useAccount(ctx context.Context, opts *Options) error {
	sel, _ := ctx.Value(accountKey{}).(string)
	accts, ok := opts.Auth.(Accounts)
	if !ok {
		return nil
	}
	a, ok := accts.Account(sel)
	if !ok {
		// Never the default account instead: the message waits for
		// the line to be added.
		return &Error{Stage: "auth", Err: fmt.Errorf("no client line for account selector %q", sel)}
	}
	opts.Auth = a
	return nil
}
