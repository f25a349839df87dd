package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
)

// exactLookup is a table looked up by a whole key; *table.Table is one.
type exactLookup interface {
	Lookup(key string) (string, bool)
}

// openExact opens tables that are looked up by whole keys.
func openExact(key string, specs []string, tables Tables) ([]exactLookup, error) {
	var out []exactLookup
	var errs []error
	for _, spec := range specs {
		if tables == nil {
			return nil, fmt.Errorf("%s: lookup tables are not available", key)
		}
		m, err := tables.Open(spec)
		if err != nil {
			errs = append(errs, &KeyError{Key: key, Err: err})
			continue
		}
		x, ok := m.(exactLookup)
		if !ok {
			errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf("%q cannot be looked up by key", spec)})
			continue
		}
		out = append(out, x)
	}
	return out, errors.Join(errs...)
}

// certLookup looks the client certificate's fingerprint up, then its
// public key's, as Postfix's check_ccert_access and relay_clientcerts do.
func certLookup(req *Request, m exactLookup) (string, bool) {
	for _, fp := range []string{req.CertFingerprint, req.PubKeyFingerprint} {
		if fp == "" {
			continue
		}
		if v, ok := m.Lookup(fp); ok {
			return v, true
		}
	}
	return "", false
}

// compileCert compiles Postfix's client certificate restrictions;
// ok is false for any other name.
func (e *Engine) compileCert(list int, name string, args []string) (check func(context.Context, *Engine, *Request) Decision, ok bool, err error) {
	switch name {
	case "permit_tls_clientcerts":
		if len(args) != 0 {
			return nil, true, errors.New("takes no argument")
		}
		if len(e.relayClientCerts) == 0 {
			return nil, true, errors.New("needs policy.relay_clientcerts, the fingerprints it permits")
		}
		return func(_ context.Context, e *Engine, req *Request) Decision {
			for _, m := range e.relayClientCerts {
				if _, ok := certLookup(req, m); ok {
					return Decision{Verdict: Permit, Rule: name}
				}
			}
			return Decision{}
		}, true, nil
	case "permit_tls_all_clientcerts":
		if len(args) != 0 {
			return nil, true, errors.New("takes no argument")
		}
		return func(_ context.Context, _ *Engine, req *Request) Decision {
			if req.CertVerified {
				return Decision{Verdict: Permit, Rule: name}
			}
			return Decision{}
		}, true, nil
	case "check_ccert_access":
		if len(args) != 1 {
			return nil, true, errors.New("takes 1 argument, a table")
		}
		ms, err := openExact("policy."+listNames[list], args, e.opts.Tables)
		if err != nil {
			return nil, true, err
		}
		rule := name + " " + args[0]
		return func(_ context.Context, e *Engine, req *Request) Decision {
			v, found := certLookup(req, ms[0])
			if !found {
				return Decision{}
			}
			d, ok := e.accessResult(v, list, rule)
			if ok && d.Refuses() {
				// Postfix names the certificate's CommonName, with
				// anything unprintable neutered, not the fingerprint.
				d.Text = "<" + printableCN(req.CertCN) + ">: Client certificate rejected: " + cmp.Or(d.Text, "Access denied")
			}
			return d
		}, true, nil
	}
	return nil, false, nil
}

// printableCN is a certificate CommonName fit for a reply line: anything
// but printable ASCII becomes '?', as Postfix's printable() does.
func printableCN(cn string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, cn)
}
