package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/xtext"
)

// ReadPassword reads one line from r, without its line ending; an empty
// line or none is an error.
func ReadPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no password on the standard input")
		}
		return "", fmt.Errorf("reading the password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("empty password")
	}
	return line, nil
}

// ServerEntry is a secrets file's line for user with password pw, of
// kind "bcrypt" (a hash; PLAIN and LOGIN only), "plain" (the password,
// xtext-encoded) or "md5" (E-MailRelay's HMAC-MD5 state). Without user it
// is the line's last field alone.
func ServerEntry(kind, user, pw string) (string, error) {
	var secret string
	switch kind {
	case "plain":
		secret = xtext.Encode(pw)
	case "md5":
		secret = MD5State(pw)
	case "bcrypt":
		var err error
		if secret, err = HashPassword(pw); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("auth: unknown kind of secret %q", kind)
	}
	if user == "" {
		return secret, nil
	}
	return fmt.Sprintf("server %s %s %s", kind, xtext.Encode(user), secret), nil
}
