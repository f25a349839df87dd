// Package auth reads E-MailRelay secrets files and does SASL on both sides of
// the relay: verifying clients that AUTH to relaykeeper (PLAIN, LOGIN,
// CRAM-MD5), and authenticating relaykeeper to a smarthost (CRAM-MD5, PLAIN,
// LOGIN, XOAUTH2). It also holds the per-address throttle for failed logins
// and the sender-login ownership table (Postfix's
// reject_sender_login_mismatch). docs/auth.md is the administrator's guide.
//
// # The secrets file
//
// One entry a line, fields separated by blanks; blank lines and lines whose
// first non-blank character is '#' are ignored, and so is the rest of a line
// from a word starting with '#' after its fields, as E-MailRelay ignores it.
// One file may hold both server and client lines, as with E-MailRelay.
//
//	server plain    USER PASS            USER and PASS xtext (RFC 3461: +XX)
//	server plain:b  B64USER B64PASS      both base64
//	server md5      USER STATE           emailrelay-passwd's HMAC-MD5 state
//	server bcrypt   USER $2a$10$...      relaykeeper's extension
//	server none     ADDRESS KEYWORD      trusted client address, no AUTH needed
//	client plain    USER PASS [SELECTOR]
//	client plain:b  B64USER B64PASS [SELECTOR]
//	client md5      USER STATE [SELECTOR]    CRAM-MD5 only
//	client oauth    USER TOKEN [SELECTOR]    XOAUTH2; oauth:b for base64
//	client oauth2   USER ID,SECRET,REFRESH[,URL] [SELECTOR]   XOAUTH2, refreshed
//	client oauth2   USER FILE [SELECTOR]     the same from a JSON file
//	login server    USER PASS            E-MailRelay 1.x: = server plain
//	login client    USER PASS            E-MailRelay 1.x: = client plain
//	APOP server     USER PASS            E-MailRelay 1.x: = server plain
//	CRAM-MD5 server USER PASS|STATE      E-MailRelay 1.x: = server plain or md5
//	NONE server     ADDRESS KEYWORD      E-MailRelay 1.x: = server none
//
// The first two words are not case-sensitive; "login" is accepted as a type
// meaning plain, and "cram-md5" and "apop" as types meaning md5, as in
// E-MailRelay. A server user has one line; a client selector (the empty
// selector is the default line) has one line. "client plain = = SELECTOR"
// (or plain:b) says that mail for SELECTOR goes out without AUTH. Every bad
// line is reported, as "FILE:LINE: message", and the file is then refused.
//
// md5 lines are E-MailRelay's masked passwords and are read exactly as
// E-MailRelay 2.x reads them: STATE is the base64 of 32 bytes, the MD5 chaining
// state (four little-endian 32-bit words) after one block of key XOR ipad,
// then the same after key XOR opad (RFC 2104); the older dotted form of eight
// decimal words is also read. The key is the password as typed, not
// xtext-decoded. Such a line serves CRAM-MD5, and also PLAIN and LOGIN,
// because relaykeeper can derive the same state from a password it is given
// and compare. Like a plain line, an md5 line must be kept secret: the state
// is password-equivalent for CRAM-MD5 and, being unsalted MD5, quick to
// attack. "relaykeeper passwd --md5" writes one.
//
// bcrypt lines serve PLAIN and LOGIN only: CRAM-MD5 needs the password or its
// md5 state on the server, so it is advertised only when every server user
// has a plain or md5 line. Not supported: CRAM-SHA1/SHA256 lines (other
// E-MailRelay masked types), APOP, PAM, and authorization identities that
// differ from the user.
//
// server none lines take an IPv4 or IPv6 address, a CIDR prefix
// (192.168.0.0/24, fd00::/8) or an E-MailRelay wildcard (192.168.0.*,
// 10.*.*.*); the longest matching prefix wins and its KEYWORD is what the
// address verifier is told.
//
// # Timing
//
// Verify takes the same steps whatever the user: it always derives the
// HMAC-MD5 state of the offered password and compares it in constant time
// with the user's state, or with a dummy state when the user is unknown or
// has a bcrypt line; and, when the file has any bcrypt line, it always runs
// one bcrypt comparison, against the user's hash or, when the user is
// unknown or has a plain or md5 line, against a dummy hash whose cost is the
// highest cost in the file. Only then does it look at which comparison
// counts. So an unknown user, a wrong password and a right one cost the same
// work, up to the difference in bcrypt cost between users' hashes, and the
// response time does not tell which users exist. CRAM-MD5 likewise computes
// the HMAC against a dummy state for an unknown user.
package auth
