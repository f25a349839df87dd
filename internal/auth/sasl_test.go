package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

var _ remote.Authenticator = (*ClientLogin)(nil)

// exchange runs a SASL exchange in memory, passing each message through
// base64 as an SMTP server and client would, and returns the mechanism used.
func exchange(c sasl.Client, srv func(mech string) (sasl.Server, error)) (string, error) {
	mech, ir, err := c.Start()
	if err != nil {
		return mech, err
	}
	s, err := srv(mech)
	if err != nil {
		return mech, err
	}
	wire := func(b []byte) []byte {
		d, err := base64.StdEncoding.DecodeString(base64.StdEncoding.EncodeToString(b))
		if err != nil {
			panic(err)
		}
		return d
	}
	resp := ir // nil: "AUTH MECH" without an initial response
	if ir != nil {
		resp = wire(ir)
	}
	for i := 0; i < 10; i++ {
		chal, done, err := s.Next(resp)
		if err != nil || done {
			return mech, err
		}
		r, err := c.Next(wire(chal))
		if err != nil {
			return mech, err
		}
		resp = wire(r)
	}
	return mech, errors.New("exchange does not end")
}

func serverFile(t *testing.T) *Secrets {
	t.Helper()
	s := mustParse(t, strings.Join([]string{
		"server plain alice alice+20pw",
		"server md5 dave " + MD5State("davepw"),
		"server plain:b " + b64("user name") + " " + b64("spaced pw"),
	}, "\n"))
	s.Domain = "mx.example"
	return s
}

func TestSASLExchange(t *testing.T) {
	srv := serverFile(t)
	all := []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	tests := []struct {
		name   string
		client string // a client line
		mechs  []string
		mech   string // want
		ok     bool
	}{
		{"cram preferred", "client plain alice alice+20pw", all, "CRAM-MD5", true},
		{"plain", "client plain alice alice+20pw", []string{"LOGIN", "PLAIN"}, "PLAIN", true},
		{"login", "client plain alice alice+20pw", []string{"LOGIN"}, "LOGIN", true},
		{"lower-case mechs", "client plain alice alice+20pw", []string{"login"}, "LOGIN", true},
		{"cram wrong", "client plain alice wrong", all, "CRAM-MD5", false},
		{"plain wrong", "client plain alice wrong", []string{"PLAIN"}, "PLAIN", false},
		{"login wrong", "client plain alice wrong", []string{"LOGIN"}, "LOGIN", false},
		{"cram unknown", "client plain mallory alice+20pw", all, "CRAM-MD5", false},
		{"plain unknown", "client plain mallory alice+20pw", []string{"PLAIN"}, "PLAIN", false},
		{"md5 server, cram", "client plain dave davepw", all, "CRAM-MD5", true},
		{"md5 server, plain", "client plain dave davepw", []string{"PLAIN"}, "PLAIN", true},
		{"md5 server, login wrong", "client plain dave alice+20pw", []string{"LOGIN"}, "LOGIN", false},
		{"md5 client", "client md5 dave " + MD5State("davepw"), all, "CRAM-MD5", true},
		{"md5 client, md5 server for plain", "client md5 alice " + MD5State("alice pw"), all, "CRAM-MD5", true},
		{"user with a space, cram", "client plain:b " + b64("user name") + " " + b64("spaced pw"), all, "CRAM-MD5", true},
		{"user with a space, login", "client plain:b " + b64("user name") + " " + b64("spaced pw"), []string{"LOGIN"}, "LOGIN", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := mustParse(t, tt.client)
			factory, ok := cs.ClientAuth("")
			if !ok {
				t.Fatal("ClientAuth(\"\") found no line")
			}
			c, err := factory.Client(tt.mechs)
			if err != nil {
				t.Fatalf("factory(%v): %v", tt.mechs, err)
			}
			var who []string
			mech, err := exchange(c, func(mech string) (sasl.Server, error) {
				return srv.Server(mech, func(id string) { who = append(who, id) })
			})
			if mech != tt.mech {
				t.Errorf("mechanism = %s; want %s", mech, tt.mech)
			}
			if tt.ok {
				if err != nil {
					t.Errorf("exchange: %v", err)
				}
				if len(who) != 1 {
					t.Errorf("onSuccess called with %q; want once", who)
				}
				return
			}
			if !errors.Is(err, ErrAuthFailed) {
				t.Errorf("exchange error = %v; want ErrAuthFailed", err)
			}
			if len(who) != 0 {
				t.Errorf("onSuccess called with %q after a failure", who)
			}
		})
	}
}

// TestSASLGoSASLClients runs go-sasl's own clients against our servers:
// PLAIN with an authorization identity, and LOGIN with the user as an
// initial response.
func TestSASLGoSASLClients(t *testing.T) {
	srv := serverFile(t)
	var who string
	server := func(mech string) (sasl.Server, error) {
		return srv.Server(mech, func(id string) { who = id })
	}
	if _, err := exchange(sasl.NewLoginClient("alice", "alice pw"), server); err != nil || who != "alice" {
		t.Errorf("go-sasl LOGIN: %v, identity %q", err, who)
	}
	if _, err := exchange(sasl.NewPlainClient("alice", "alice", "alice pw"), server); err != nil {
		t.Errorf("go-sasl PLAIN, same identity: %v", err)
	}
	_, err := exchange(sasl.NewPlainClient("root", "alice", "alice pw"), server)
	if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "authorization identity") {
		t.Errorf("go-sasl PLAIN, other identity: %v; want ErrAuthFailed", err)
	}
}

func TestServerMechanisms(t *testing.T) {
	withBcrypt := mustParse(t, "server bcrypt bob "+testHash(t, "bobpw"))
	for _, mech := range []string{"CRAM-MD5", "DIGEST-MD5", "XOAUTH2"} {
		if _, err := withBcrypt.Server(mech, nil); !errors.Is(err, ErrUnsupportedMechanism) {
			t.Errorf("Server(%s) error = %v; want ErrUnsupportedMechanism", mech, err)
		}
	}
	for _, mech := range []string{"PLAIN", "login"} {
		s, err := withBcrypt.Server(mech, nil)
		if err != nil {
			t.Fatalf("Server(%s): %v", mech, err)
		}
		c := sasl.NewPlainClient("", "bob", "bobpw")
		if mech == "login" {
			c = &loginClient{user: "bob", pass: "bobpw"}
		}
		if _, err := exchange(c, func(string) (sasl.Server, error) { return s, nil }); err != nil {
			t.Errorf("%s with a bcrypt user: %v", mech, err)
		}
	}
	if _, err := mustParse(t, "server none 127.0.0.1 x").Server("PLAIN", nil); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Errorf("Server with no users: %v; want ErrUnsupportedMechanism", err)
	}
}

func TestCRAMChallenge(t *testing.T) {
	s := serverFile(t)
	s.random = bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0x30, 0x39, 1, 2, 3, 4, 5, 6, 7, 8})
	s.now = func() time.Time { return time.Unix(1700000000, 0) }
	srv, err := s.Server("CRAM-MD5", nil)
	if err != nil {
		t.Fatal(err)
	}
	chal, done, err := srv.Next(nil)
	if err != nil || done {
		t.Fatalf("Next(nil) = %q, %v, %v", chal, done, err)
	}
	if got, want := string(chal), "<12345.1700000000@mx.example>"; got != want {
		t.Errorf("challenge = %q; want %q", got, want)
	}
	if _, _, err := srv.Next([]byte("alice 0123")); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("wrong digest: %v; want ErrAuthFailed", err)
	}
	if _, _, err := srv.Next([]byte("again")); err == nil {
		t.Error("a third message was accepted")
	}

	s.Domain = ""
	s.random = rand.Reader
	srv, _ = s.Server("CRAM-MD5", nil)
	chal, _, _ = srv.Next([]byte{}) // "AUTH CRAM-MD5 =" is an empty initial response
	if !regexp.MustCompile(`^<[0-9]+\.1700000000@localhost>$`).Match(chal) {
		t.Errorf("challenge = %q; want <random.1700000000@localhost>", chal)
	}
	srv, _ = s.Server("CRAM-MD5", nil)
	if _, _, err := srv.Next([]byte("alice")); err == nil {
		t.Error("CRAM-MD5 accepted an initial response")
	}
	srv, _ = s.Server("CRAM-MD5", nil)
	srv.Next(nil)
	if _, done, err := srv.Next([]byte("nospace")); !done || !errors.Is(err, ErrAuthFailed) {
		t.Errorf("malformed response: done %v, %v; want done, ErrAuthFailed", done, err)
	}
}

func TestClientAuth(t *testing.T) {
	s := mustParse(t, strings.Join([]string{
		"client plain dflt pw",
		"client plain:b = = direct",
		"client oauth me@gmail.com ya29.tok google",
		"client md5 m " + MD5State("x") + " hashed",
	}, "\n"))
	if f, ok := s.ClientAuth("direct"); f != nil || !ok {
		t.Errorf("ClientAuth(direct) = %v, %v; want nil, true", f != nil, ok)
	}
	if f, ok := s.ClientAuth("nosuch"); f != nil || ok {
		t.Errorf("ClientAuth(nosuch) = %v, %v; want nil, false", f != nil, ok)
	}

	tests := []struct {
		sel   string
		mechs []string
		mech  string // "" for an error
	}{
		{"", []string{"XOAUTH2", "PLAIN"}, "PLAIN"},
		{"", []string{"XOAUTH2"}, ""},
		{"", nil, ""},
		{"google", []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}, "XOAUTH2"},
		{"google", []string{"PLAIN", "LOGIN"}, ""},
		{"hashed", []string{"PLAIN", "CRAM-MD5"}, "CRAM-MD5"},
		{"hashed", []string{"PLAIN", "LOGIN"}, ""},
	}
	for _, tt := range tests {
		f, ok := s.ClientAuth(tt.sel)
		if !ok || f == nil {
			t.Fatalf("ClientAuth(%q) = %v, %v", tt.sel, f != nil, ok)
		}
		c, err := f.Client(tt.mechs)
		if tt.mech == "" {
			if err == nil {
				t.Errorf("ClientAuth(%q)(%v) = a client; want an error", tt.sel, tt.mechs)
			}
			continue
		}
		if err != nil {
			t.Errorf("ClientAuth(%q)(%v): %v", tt.sel, tt.mechs, err)
			continue
		}
		if mech, _, _ := c.Start(); mech != tt.mech {
			t.Errorf("ClientAuth(%q)(%v) chose %s; want %s", tt.sel, tt.mechs, mech, tt.mech)
		}
	}

	f, _ := s.ClientAuth("")
	_, err := f.Client([]string{"XOAUTH2"})
	if want := "auth: the server offers XOAUTH2; the client secret on line 1 needs CRAM-MD5, PLAIN or LOGIN"; err == nil || err.Error() != want {
		t.Errorf("error = %v; want %q", err, want)
	}
}

func TestXOAUTH2Client(t *testing.T) {
	c := &xoauth2Client{user: "me@gmail.com", token: "ya29.tok"}
	mech, ir, err := c.Start()
	if want := "user=me@gmail.com\x01auth=Bearer ya29.tok\x01\x01"; mech != "XOAUTH2" || string(ir) != want || err != nil {
		t.Errorf("Start() = %s, %q, %v; want XOAUTH2, %q", mech, ir, err, want)
	}
	// A failure: the server sends a JSON error; the client answers empty.
	resp, err := c.Next([]byte(`{"status":"401"}`))
	if err != nil || resp == nil || len(resp) != 0 {
		t.Errorf("Next(error) = %q, %v; want an empty response", resp, err)
	}
	if _, err := c.Next(nil); err == nil {
		t.Error("a second challenge was answered")
	}
	if _, _, err := (&xoauth2Client{user: "a\x01b"}).Start(); err == nil {
		t.Error("a ^A in the user was sent")
	}
}

func TestLoginClient(t *testing.T) {
	tests := []struct {
		chals []string
		want  []string
	}{
		{[]string{"Username:", "Password:"}, []string{"u", "p"}},
		{[]string{"User Name", "Password"}, []string{"u", "p"}},
		{[]string{"", ""}, []string{"u", "p"}},
		{[]string{"Password:", "Username:"}, []string{"p", "u"}},
	}
	for _, tt := range tests {
		c := &loginClient{user: "u", pass: "p"}
		var got []string
		for _, ch := range tt.chals {
			r, err := c.Next([]byte(ch))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(r))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("LOGIN answers to %q (-want +got):\n%s", tt.chals, diff)
		}
		if _, err := c.Next([]byte("more")); err == nil {
			t.Errorf("a third challenge was answered")
		}
	}
}

// session is a go-smtp session that authenticates with Secrets.
type session struct {
	s    *Secrets
	user *string
}

func (ss *session) AuthMechanisms() []string { return ss.s.Mechanisms(false, true) }
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(ss.AuthMechanisms(), strings.ToUpper(mech)) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return ss.s.Server(mech, func(id string) { *ss.user = id })
}
func (ss *session) Reset()                                        {}
func (ss *session) Logout() error                                 { return nil }
func (ss *session) Mail(string, *smtp.MailOptions) error          { return nil }
func (ss *session) Rcpt(string, *smtp.RcptOptions) error          { return nil }
func (ss *session) Data(r io.Reader) error                        { _, err := io.Copy(io.Discard, r); return err }
func (b backendFunc) NewSession(*smtp.Conn) (smtp.Session, error) { return b() }

type backendFunc func() (smtp.Session, error)

// TestLoopback authenticates relaykeeper's SMTP client to a go-smtp server
// over loopback, both sides using this package.
func TestLoopback(t *testing.T) {
	serverSecrets := mustParse(t, "server plain alice alicepw\nserver bcrypt bob "+testHash(t, "bobpw"))
	var user string
	srv := smtp.NewServer(backendFunc(func() (smtp.Session, error) {
		return &session{s: serverSecrets, user: &user}, nil
	}))
	srv.AllowInsecureAuth = true
	srv.Domain = "mx.example"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	tests := []struct {
		client string
		ok     bool
	}{
		{"client plain alice alicepw", true},
		{"client plain bob bobpw", true},
		{"client plain bob wrong", false},
		{"client plain nobody bobpw", false},
	}
	for _, tt := range tests {
		user = ""
		f, _ := mustParse(t, tt.client).ClientAuth("")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := remote.Dial(ctx, ln.Addr().String(), remote.Options{Auth: f, ResponseTimeout: 5 * time.Second})
		cancel()
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", tt.client, err)
				continue
			}
			c.Quit()
			if want := strings.Fields(tt.client)[2]; user != want {
				t.Errorf("%s: server saw %q; want %q", tt.client, user, want)
			}
			continue
		}
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "auth" {
			t.Errorf("%s: %v; want an auth error", tt.client, err)
		}
		if c != nil {
			c.Close()
		}
	}
}
