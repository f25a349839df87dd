// Package table reads Postfix lookup tables straight from the files
// administrators already have, answers lookups in Postfix's search orders,
// and parses access(5) results into actions.
//
// # Specs and formats
//
// Open takes a Postfix table spec, TYPE:PATH or a bare path ("proxy:" in
// front is ignored):
//
//   - hash:, btree:, lmdb:, cdb:, dbm:, sdbm:, texthash: and a bare path
//     all read the text file at PATH, the source postmap(1) would index;
//     there is no postmap step and no .db file is read. The format is that
//     of postmap(1) and access(5): "key whitespace value"; blank lines and
//     lines whose first non-blank character is '#' are ignored; a line that
//     starts with whitespace continues the logical line before it (joined
//     as Postfix joins it, the leading whitespace separating the parts).
//     Keys are folded to lower case; a key ends at whitespace outside
//     double quotes. A later duplicate key is ignored with a warning, as
//     postmap does. A key without a value is an error.
//   - cidr: is cidr_table(5): "network/prefix result" or "address result",
//     IPv4 and IPv6, optionally in [], negated with "!", "if pattern" ...
//     "endif" blocks; the first matching line wins. Host bits set beyond
//     the prefix are an error.
//   - regexp: and pcre: are regexp_table(5) and pcre_table(5):
//     "/pattern/flags result", "!/pattern/flags result", the old
//     "/p1/!/p2/ result", "if /pattern/flags" ... "endif" (nesting), the
//     first match wins, and $1, ${1} or $(1) in the result are replaced by
//     the subexpression's text ($$ is a $). Both are case-insensitive
//     unless the "i" flag toggles it. regexp: flags are i, m and x (x
//     toggles POSIX extended syntax; basic syntax is not supported), with
//     leftmost-longest (POSIX) matching and "." matching newline unless
//     "m". pcre: flags are i, m, s (on by default), x (done here, since RE2
//     lacks it), A, U, and E and X (no effect in RE2). Patterns are
//     compiled with Go's regexp package (RE2): what RE2 cannot compile,
//     such as backreferences and lookaround, is an error naming the file
//     and line. Rules may also be written in the spec, as
//     regexp:{ {rule}, {rule} }, and likewise for pcre: and cidr:.
//   - static:VALUE (or static:{ VALUE }) answers VALUE to every lookup.
//   - inline:{ key=value, { key = value with spaces } } is a small
//     hash-like table written in the spec; a later duplicate replaces an
//     earlier one, as in Postfix, with a warning.
//
// Every problem in a file is reported, each as FILE:LINE: message (a
// ParseError), joined with errors.Join; the table is not opened.
//
// # Lookup orders
//
// Tables with exact keys (the text types, inline:) are searched for the
// whole string and then its parts; pattern tables (regexp:, pcre:, cidr:)
// see the whole string only, as access(5) and transport(5) describe.
//
//   - Lookup: the key as given (postmap -q).
//   - LookupAddress (check_sender_access, check_recipient_access,
//     access(5)): user@domain; domain; each parent domain P as "P" and
//     then ".P"; user@. The null sender looks up "<>". Postfix tries only
//     "P" by default (parent_domain_matches_subdomains lists
//     smtpd_access_maps) or only ".P" otherwise; trying both means either
//     style of table works, and a table that has both a "P" and a ".P" key
//     gets the answer Postfix's default gives.
//   - LookupClient (check_client_access, access(5)): the hostname and its
//     parents as above; then the IP address, and the address text cut back
//     at each '.' (IPv4: 192.0.2, 192.0, 192) or ':' (IPv6). cidr tables
//     match the address; regexp tables see the hostname, then the address.
//   - LookupDomain (transport(5)): domain; each parent P as ".P" (or as
//     "P" with DomainMatch.ParentMatchesSubdomains); "*".
//
// # Reload and failure behaviour
//
// A Table holds its parsed contents behind an atomic pointer: lookups never
// block and see either the old or the new contents. Reload re-reads the
// file when its inode, size or modification time changed, parses it
// completely, and only then swaps it in; a file that does not parse leaves
// the old contents in force and Reload returns its errors (again on each
// call, until the file changes). A Set opens each file once and reloads
// all of them.
//
// # Actions
//
// ParseAction turns an access(5) result into an Action: OK, all-numeric
// (OK), REJECT, DEFER, DEFER_IF_REJECT, DEFER_IF_PERMIT, 4NN/5NN text with
// an optional RFC 3463 code, DISCARD, HOLD, DUNNO, WARN, INFO, FILTER,
// PREPEND, REDIRECT, BCC, or a list of restrictions. Action.Reply gives
// the SMTP reply Postfix would send.
package table
