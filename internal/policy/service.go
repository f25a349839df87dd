package policy

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/hostport"
)

// Postfix's defaults for check_policy_service (postconf(5)).
const (
	policyTimeout = 100 * time.Second // smtpd_policy_service_timeout
	policyMaxIdle = 300 * time.Second // smtpd_policy_service_max_idle
	policyMaxTTL  = 1000 * time.Second
	policyTries   = 2 // smtpd_policy_service_try_limit
	// policyIdleConns bounds the connections kept open between requests;
	// Postfix keeps one per smtpd process, this one process serves every
	// session.
	policyIdleConns = 16
	// A response is a few short lines; these bound a server gone wrong.
	policyMaxLine  = 8192
	policyMaxLines = 100
)

// policyDefaultAction is Postfix's smtpd_policy_service_default_action,
// the answer when the server cannot be asked.
const policyDefaultAction = "451 4.3.5 Server configuration problem"

// policyService is a Postfix SMTPD policy delegation server
// (check_policy_service inet:host:port or unix:/path, as in
// SMTPD_POLICY_README): one request per check, over connections kept
// open between requests, as Postfix's smtpd keeps them.
type policyService struct {
	network, addr string
	// The settings Postfix 3.0's { NAME, name=value, ... } form may
	// change; Postfix's defaults otherwise.
	timeout, maxIdle, maxTTL, retryDelay time.Duration
	tries, requestLimit                  int
	defaultAction                        string
	context                              string // policy_context, sent as it is

	mu   sync.Mutex
	idle []*policyConn
}

type policyConn struct {
	c          net.Conn
	r          *bufio.Reader
	born, used time.Time
	requests   int
}

// parsePolicyService reads Postfix's inet:host:port and unix:/path forms,
// and Postfix 3.0's "{ inet:host:port, timeout=10s, default_action=DUNNO }"
// with the per-service settings of postconf(5): default_action, max_idle,
// max_ttl, policy_context, request_limit, retry_delay, timeout and
// try_limit. A value with spaces or commas goes in braces of its own:
// "{ default_action = 451 4.3.5 Try later }".
func parsePolicyService(spec string) (*policyService, error) {
	spec = strings.TrimSpace(spec)
	if !strings.HasPrefix(spec, "{") {
		return policyEndpoint(spec)
	}
	elems, err := braceElements(spec)
	if err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("%q: names no server", spec)
	}
	p, err := policyEndpoint(elems[0])
	if err != nil {
		return nil, err
	}
	for _, el := range elems[1:] {
		name, value, ok := strings.Cut(el, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: %q is not name=value", spec, el)
		}
		if err := p.set(name, value); err != nil {
			return nil, fmt.Errorf("%q: %s: %w", spec, name, err)
		}
	}
	return p, nil
}

// policyEndpoint is the service at inet:host:port or unix:/path, with
// Postfix's default settings.
func policyEndpoint(spec string) (*policyService, error) {
	p := &policyService{timeout: policyTimeout, maxIdle: policyMaxIdle, maxTTL: policyMaxTTL,
		retryDelay: time.Second, tries: policyTries, defaultAction: policyDefaultAction}
	kind, addr, ok := strings.Cut(spec, ":")
	switch {
	case !ok || addr == "":
	case kind == "inet":
		if err := hostport.Check(addr); err != nil {
			return nil, fmt.Errorf("%q: want inet:host:port: %w", spec, err)
		}
		p.network, p.addr = "tcp", addr
		return p, nil
	case kind == "unix":
		if !filepath.IsAbs(addr) {
			return nil, fmt.Errorf("%q: write the socket's full path (Postfix's private/NAME is relative to its queue directory, which relaykeeper does not have)", spec)
		}
		p.network, p.addr = "unix", addr
		return p, nil
	}
	return nil, fmt.Errorf("%q: want inet:host:port or unix:/path/to/socket", spec)
}

// set applies one name=value of the brace form.
func (p *policyService) set(name, value string) error {
	var err error
	switch name {
	case "default_action":
		if _, err = TableAction(value); err == nil {
			p.defaultAction = value
		}
	case "policy_context":
		p.context = value
	case "timeout", "max_idle", "max_ttl", "retry_delay":
		var d time.Duration
		if d, err = postfixTime(value); err == nil {
			*map[string]*time.Duration{"timeout": &p.timeout, "max_idle": &p.maxIdle,
				"max_ttl": &p.maxTTL, "retry_delay": &p.retryDelay}[name] = d
		}
	case "try_limit", "request_limit":
		n, perr := strconv.Atoi(value)
		switch {
		case perr != nil || n < 0:
			err = fmt.Errorf("%q is not a number", value)
		case name == "try_limit" && n < 1:
			err = errors.New("must be at least 1")
		case name == "try_limit":
			p.tries = n
		default:
			p.requestLimit = n
		}
	default:
		err = errors.New("unknown setting; want default_action, max_idle, max_ttl, policy_context, request_limit, retry_delay, timeout or try_limit")
	}
	return err
}

// postfixTime reads a Postfix time value: a number and an optional unit,
// s (the default), m, h, d or w.
func postfixTime(v string) (time.Duration, error) {
	unit := time.Second
	num := v
	if i := len(v) - 1; i > 0 && strings.ContainsRune("smhdw", rune(v[i])) {
		num, unit = v[:i], map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour,
			'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[v[i]]
	}
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a time (a positive number, with s, m, h, d or w)", v)
	}
	return time.Duration(n) * unit, nil
}

// braceElements splits "{ a, b c, { d = e f } }" into a, b, c and "d = e
// f": elements are separated by commas or white space, and braces keep
// one together.
func braceElements(spec string) ([]string, error) {
	if !strings.HasSuffix(spec, "}") {
		return nil, fmt.Errorf("%q: missing '}'", spec)
	}
	inner := spec[1 : len(spec)-1]
	var out []string
	var cur strings.Builder
	depth := 0
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for _, c := range inner {
		switch {
		case c == '{':
			if depth == 0 {
				flush()
			} else {
				cur.WriteRune(c)
			}
			depth++
		case c == '}':
			if depth == 0 {
				return nil, fmt.Errorf("%q: unbalanced '}'", spec)
			}
			if depth--; depth == 0 {
				flush()
			} else {
				cur.WriteRune(c)
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			flush()
		default:
			cur.WriteRune(c)
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%q: missing '}'", spec)
	}
	flush()
	return out, nil
}

func (p *policyService) String() string {
	if p.network == "tcp" {
		return "inet:" + p.addr
	}
	return "unix:" + p.addr
}

// ask sends one request and returns the server's action. A connection
// that fails is dropped and the request is tried once more on a new one
// (a kept connection may have been closed by the server meanwhile).
func (p *policyService) ask(ctx context.Context, attrs []policyAttr) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var req strings.Builder
	for _, a := range attrs {
		req.WriteString(a.name + "=" + oneLine(a.value) + "\n")
	}
	req.WriteString("\n")
	var err error
	for try := range p.tries {
		if try > 1 {
			// Postfix's retry_delay; the first retry, on a new
			// connection, goes at once (a kept one may just be stale).
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(p.retryDelay):
			}
		}
		var pc *policyConn
		// The retry is on a new connection: after a server restart
		// every kept one is dead, not only the first.
		if pc, err = p.conn(ctx, try > 0); err != nil {
			continue
		}
		var action string
		if action, err = pc.ask(ctx, req.String()); err == nil {
			p.put(pc)
			return action, nil
		}
		pc.c.Close()
		if ctx.Err() != nil {
			break
		}
	}
	return "", err
}

// conn takes a kept connection that is still young enough and quiet, or
// (or with fresh set) dials.
func (p *policyService) conn(ctx context.Context, fresh bool) (*policyConn, error) {
	now := time.Now()
	for !fresh {
		p.mu.Lock()
		if len(p.idle) == 0 {
			p.mu.Unlock()
			break
		}
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		if now.Sub(pc.used) < p.maxIdle && now.Sub(pc.born) < p.maxTTL && pc.quiet() {
			return pc, nil
		}
		pc.c.Close()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, p.network, p.addr)
	if err != nil {
		return nil, err
	}
	return &policyConn{c: c, r: bufio.NewReaderSize(c, 4096), born: now}, nil
}

// quiet reports whether a kept connection has nothing to read: a server
// that closed it, or that sent more than its answer (a late or extra
// "action=" block), would have it read as the answer to the next
// request.
func (pc *policyConn) quiet() bool {
	if pc.r.Buffered() > 0 {
		return false
	}
	pc.c.SetReadDeadline(time.Now())
	_, err := pc.r.Peek(1)
	pc.c.SetReadDeadline(time.Time{})
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func (p *policyService) put(pc *policyConn) {
	pc.requests++
	if pc.r.Buffered() > 0 || (p.requestLimit > 0 && pc.requests >= p.requestLimit) {
		pc.c.Close() // more than one answer (see quiet), or request_limit
		return
	}
	pc.used = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= policyIdleConns {
		pc.c.Close()
		return
	}
	p.idle = append(p.idle, pc)
}

// ask writes the request and reads the response's attributes up to its
// empty line; the action attribute is the answer.
func (pc *policyConn) ask(ctx context.Context, req string) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		pc.c.SetDeadline(dl)
	}
	// A cancelled context (the client went away) ends the wait too.
	stop := context.AfterFunc(ctx, func() { pc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := pc.c.Write([]byte(req)); err != nil {
		return "", err
	}
	action, found := "", false
	for n := 0; ; n++ {
		line, err := pc.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > policyMaxLine {
			return "", errors.New("response line too long")
		}
		if err != nil {
			return "", err
		}
		s := strings.TrimRight(string(line), "\r\n")
		if s == "" {
			if !found {
				return "", errors.New("response without an action attribute")
			}
			return action, nil
		}
		if n >= policyMaxLines {
			return "", errors.New("response too long")
		}
		name, value, ok := strings.Cut(s, "=")
		if !ok {
			return "", fmt.Errorf("malformed response line %q", s)
		}
		if name == "action" {
			// No control character goes on into a reply or a PREPENDed
			// header field (a bare CR is a line break to some peers);
			// Postfix makes them printable too.
			action, found = strings.TrimSpace(oneLine(value)), true
		}
	}
}

// policyAttr is one request attribute.
type policyAttr struct{ name, value string }

// oneLine keeps a value on its line, each control character but a tab
// made a space: the protocol has no quoting, so a line break in a request
// value would start another attribute (no SMTP command can carry one; this
// is for the day one does), and in an action it would reach a reply or a
// PREPENDed header field, where a bare CR is a line break to some peers.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// trusted is v when the client certificate verified, "" otherwise.
func trusted(req *Request, v string) string {
	if req.CertVerified {
		return v
	}
	return ""
}

// policyRequest is the request for one check, in SMTPD_POLICY_README's
// order. Attributes relaykeeper has no value for are sent empty, as
// Postfix sends them.
func policyRequest(stage Stage, req *Request) []policyAttr {
	state, count := "RCPT", 0
	switch stage {
	case StageMail:
		state = "MAIL"
	case StageData:
		// Postfix counts recipients for the DATA and END-OF-MESSAGE
		// states only.
		state, count = "DATA", req.RecipientCount
	case StageEndOfData:
		state, count = "END-OF-MESSAGE", req.RecipientCount
	}
	clientName, port := req.ClientName, ""
	if clientName == "" {
		clientName = "unknown"
	}
	if _, p, err := net.SplitHostPort(req.ClientAddr); err == nil {
		port = p
	}
	serverAddr, serverPort, _ := net.SplitHostPort(req.ServerAddr)
	return []policyAttr{
		{"request", "smtpd_access_policy"},
		{"protocol_state", state},
		{"protocol_name", cmp.Or(req.ProtocolName, "ESMTP")},
		{"helo_name", req.Helo},
		{"queue_id", req.QueueID},
		{"sender", req.Sender},
		{"recipient", req.Recipient},
		{"recipient_count", strconv.Itoa(count)},
		{"client_address", req.ClientIP.Unmap().String()},
		{"client_name", clientName},
		{"reverse_client_name", cmp.Or(req.ReverseName, "unknown")},
		{"instance", req.Instance},
		{"sasl_method", req.AuthMech},
		{"sasl_username", req.AuthID},
		{"sasl_sender", ""},
		{"size", strconv.FormatInt(max(req.Size, 0), 10)},
		// As Postfix: the names only of a certificate that verified
		// against the client CAs, the fingerprints of any.
		{"ccert_subject", trusted(req, req.CertCN)},
		{"ccert_issuer", trusted(req, req.CertIssuerCN)},
		{"ccert_fingerprint", req.CertFingerprint},
		{"ccert_pubkey_fingerprint", req.PubKeyFingerprint},
		{"encryption_protocol", req.TLSProtocol},
		{"encryption_cipher", req.TLSCipher},
		{"encryption_keysize", strconv.Itoa(req.TLSKeySize)},
		{"etrn_domain", ""},
		{"stress", ""},
		{"client_port", port},
		{"policy_context", ""},
		{"server_address", serverAddr},
		{"server_port", serverPort},
	}
}

// askPolicy asks a policy service about req and reads its action as an
// access table result, worded for the list it stands in, as Postfix's
// smtpd does. A server that cannot be asked, or that answers something
// that is no action, gets Postfix's default: 451 4.3.5.
func (e *Engine) askPolicy(ctx context.Context, svc *policyService, list int, req *Request) Decision {
	rule := "check_policy_service " + svc.String()
	stage := StageRcpt
	switch list {
	case mailList:
		stage = StageMail
	case dataList:
		stage = StageData
	case eodList:
		stage = StageEndOfData
	}
	attrs := policyRequest(stage, req)
	if svc.context != "" {
		attrs = append(attrs, policyAttr{"policy_context", svc.context})
	}
	action, err := svc.ask(ctx, attrs)
	if err == nil {
		var d Decision
		if d, err = e.tableAction(action, list); err == nil {
			d.Rule = rule
			return e.fillText(d, listChecks[list], req)
		}
	}
	if ctx.Err() == nil { // else the session is over and nobody hears it
		e.opts.Log.Error("policy service failed; answering with its default action", "rule", rule,
			"action", svc.defaultAction, "err", err)
	}
	d, _ := TableAction(svc.defaultAction)
	d.Rule = rule
	return e.fillText(d, listChecks[list], req)
}
