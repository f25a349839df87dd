package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// GoogleTokenURL is where Google's OAuth 2 access tokens are refreshed,
// the default token URL of an oauth2 line.
const GoogleTokenURL = "https://oauth2.googleapis.com/token"

// OAuthCredentials are what it takes to get access tokens without a
// person: an OAuth 2 client and a refresh token granted to it (for Gmail,
// with the https://mail.google.com/ scope).
//
// In a secrets file they are either inline,
//
//	client oauth2 USER CLIENT_ID,CLIENT_SECRET,REFRESH_TOKEN[,TOKEN_URL] [SELECTOR]
//
// or a JSON file named instead (relative to the secrets file), in the form
// Google's tools write ("authorized_user"):
//
//	{"client_id": "...", "client_secret": "...", "refresh_token": "...", "token_uri": "..."}
type OAuthCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RefreshToken string `json:"refresh_token"`
	// TokenURL defaults to GoogleTokenURL. "token_url" is read too.
	TokenURL string `json:"token_uri"`
}

// parseOAuthCredentials reads an oauth2 line's secret: the inline form
// when it holds commas, else a file name, relative to dir.
func parseOAuthCredentials(secret, dir string) (OAuthCredentials, error) {
	var c OAuthCredentials
	if strings.Contains(secret, ",") {
		f := strings.Split(secret, ",")
		if len(f) < 3 || len(f) > 4 {
			return c, errors.New("oauth2 secret: want CLIENT_ID,CLIENT_SECRET,REFRESH_TOKEN[,TOKEN_URL] or a file name")
		}
		c = OAuthCredentials{ClientID: f[0], ClientSecret: f[1], RefreshToken: f[2]}
		if len(f) == 4 {
			c.TokenURL = f[3]
		}
	} else {
		name := secret
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return c, fmt.Errorf("oauth2 credentials: %w", err)
		}
		var raw struct {
			OAuthCredentials
			TokenURL2 string `json:"token_url"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			return c, fmt.Errorf("oauth2 credentials %s: %w", name, err)
		}
		c = raw.OAuthCredentials
		if c.TokenURL == "" {
			c.TokenURL = raw.TokenURL2
		}
	}
	if c.TokenURL == "" {
		c.TokenURL = GoogleTokenURL
	}
	var missing []string
	for _, kv := range [][2]string{{"client id", c.ClientID}, {"client secret", c.ClientSecret}, {"refresh token", c.RefreshToken}} {
		if kv[1] == "" {
			missing = append(missing, kv[0])
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("oauth2 credentials: no %s", strings.Join(missing, ", "))
	}
	if !strings.HasPrefix(c.TokenURL, "https://") && !strings.HasPrefix(c.TokenURL, "http://") {
		return c, fmt.Errorf("oauth2 token URL %q: want an http or https URL", c.TokenURL)
	}
	if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme == "http" && !loopbackHost(u.Hostname())) {
		// The request carries the client secret and the refresh token.
		return c, fmt.Errorf("oauth2 token URL %q: want https (the request carries the client secret and refresh token); plain http only to a loopback address", c.TokenURL)
	}
	return c, nil
}

// loopbackHost reports whether host is a loopback address. Only an
// address: a name, even "localhost", is what the resolver makes of it
// (remote.TLSSettings.Config decides the same for the smarthost).
func loopbackHost(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// TokenSource caches an OAuth 2 access token and refreshes it before it
// expires: when less than a quarter of its lifetime, at most five minutes,
// is left, so that a token is never sent in its last minutes. A token the
// server refuses is dropped (Invalidate), so the next session gets a new
// one. It is safe for concurrent use; one refresh runs at a time.
type TokenSource struct {
	user string
	conf *oauth2.Config
	ctx  context.Context // carries the token endpoint's HTTP client
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex // guards below
	refresh string     // the refresh token; the endpoint may rotate it
	tok     *oauth2.Token
	renewAt time.Time
}

// NewTokenSource makes a token source for c. log, if not nil, is told
// about every refresh failure.
func NewTokenSource(user string, c OAuthCredentials, log *slog.Logger) *TokenSource {
	conf := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: c.TokenURL}}
	// The token endpoint's own timeout: a hung endpoint must not hold a
	// delivery worker.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TokenSource{user: user, conf: conf, ctx: ctx, refresh: c.RefreshToken, log: log, now: time.Now}
}

// Token returns a valid access token, refreshing it first when due. A
// refresh failure is logged and returned: the delivery that asked is then
// deferred, never bounced.
func (ts *TokenSource) Token() (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	if ts.tok != nil && now.Before(ts.renewAt) {
		return ts.tok.AccessToken, nil
	}
	// A token with only the refresh token is expired: the source
	// refreshes at once. (oauth2's own cache keeps time by the wall clock
	// and refreshes only seconds before expiry; this one decides.)
	tok, err := ts.conf.TokenSource(ts.ctx, &oauth2.Token{RefreshToken: ts.refresh}).Token()
	if err == nil && tok.AccessToken == "" {
		err = errors.New("the token endpoint sent no access token")
	}
	if err != nil {
		ts.log.Error("OAuth2 token refresh failed; mail for this account waits", "user", ts.user, "err", err)
		return "", &remote.CredentialsError{Err: fmt.Errorf("auth: OAuth2 token refresh for %s: %w", ts.user, err)}
	}
	if tok.RefreshToken != "" {
		ts.refresh = tok.RefreshToken
	}
	ts.tok = tok
	ts.renewAt = now.Add(time.Hour)
	if !tok.Expiry.IsZero() {
		life := tok.Expiry.Sub(now)
		ts.renewAt = tok.Expiry.Add(-min(life/4, 5*time.Minute))
	}
	ts.log.Info("OAuth2 access token refreshed", "user", ts.user, "expires", tok.Expiry)
	return tok.AccessToken, nil
}

// Invalidate drops the cached token if it is still token, which a server
// has just refused.
func (ts *TokenSource) Invalidate(token string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok != nil && ts.tok.AccessToken == token {
		ts.tok = nil
	}
}

// refreshingXOAUTH2 is XOAUTH2 with a token from a TokenSource, fetched
// when the session starts AUTH. A 334 challenge means the server refused
// the token: it is invalidated before the empty answer that gets the
// final reply; so is one refused with a 5xx at once (Refused).
type refreshingXOAUTH2 struct {
	ts    *TokenSource
	inner xoauth2Client
}

func (x *refreshingXOAUTH2) Start() (string, []byte, error) {
	tok, err := x.ts.Token()
	if err != nil {
		return "", nil, err
	}
	x.inner.token = tok
	return x.inner.Start()
}

func (x *refreshingXOAUTH2) Next(challenge []byte) ([]byte, error) {
	x.ts.Invalidate(x.inner.token)
	return x.inner.Next(challenge)
}

// Refused drops the token a server refused with a 5xx straight away, with
// no 334 challenge first (Microsoft's servers answer 535 5.7.3 so): the
// next session gets a new one (remote.RefusalListener).
func (x *refreshingXOAUTH2) Refused() { x.ts.Invalidate(x.inner.token) }
