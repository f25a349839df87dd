package policy

import (
	"path/filepath"
	"strings"
)

// enforcerTable reports whether spec ("hash:/etc/postfix/sender_access")
// names the file of a table in the Mail list: the enforcer's blocked
// domains. Such a table named in another list as well (docs/enforce.md
// shows "check_sender_access hash:/etc/postfix/sender_access" in
// sender_restrictions, and Postfix sites keep it in their recipient
// restrictions) is not consulted for MailExempt's clients either: the
// welcomelist's clients are never touched by the enforcer's sanctions,
// and a spammer who had a welcomelisted partner's domain blocked by
// sending as it must not cut the partner off.
func (e *Engine) enforcerTable(spec string) bool {
	file := tableFile(spec)
	if file == "" {
		return false
	}
	for _, item := range e.opts.Mail {
		f := strings.Fields(item)
		if len(f) == 2 && lower(f[0]) == "check_sender_access" && tableFile(f[1]) == file {
			return true
		}
	}
	return false
}

// tableFile is the cleaned file of a table spec "TYPE:FILE", "" for a
// table that is no file (inline:{...}).
func tableFile(spec string) string {
	typ, file, ok := strings.Cut(spec, ":")
	if !ok || typ == "inline" || !filepath.IsAbs(file) {
		return ""
	}
	return filepath.Clean(file)
}
