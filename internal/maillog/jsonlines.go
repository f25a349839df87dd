package maillog

import (
	"encoding/json"
	"io"
	"strings"
)

// JSONLines returns a writer that wraps each mail-log line written to it in
// a JSON object, {"time", "level", "msg": "mail log", "line"}, for a mail
// log that shares the diagnostic log's stream when that is JSON (--log-format
// json): a log collector then reads one JSON object per line throughout. The
// line itself is kept whole, in the documented format, so that the same
// parsers read it. Each Write must hold whole lines, as Logger's do.
func JSONLines(w io.Writer) io.Writer { return jsonLines{w} }

type jsonLines struct{ w io.Writer }

// jsonLine is the object written for one line; the field order is slog's.
type jsonLine struct {
	Time  string `json:"time"`
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Line  string `json:"line"`
}

func (j jsonLines) Write(p []byte) (int, error) {
	var b strings.Builder
	for line := range strings.Lines(string(p)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		out, err := json.Marshal(jsonLine{Time: ts, Level: "INFO", Msg: "mail log", Line: line})
		if err != nil {
			return 0, err
		}
		b.Write(out)
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(j.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// FromJSONLine returns the mail-log line that JSONLines wrapped in s, and
// true; for any other line, false. With --log-format json the mail log
// shares the --log-file as such objects, and "relaykeeper stats" reads them
// as it reads the plain lines.
func FromJSONLine(s string) (string, bool) {
	if !strings.HasPrefix(s, "{") || !strings.Contains(s, `"mail log"`) {
		return "", false
	}
	var j jsonLine
	if json.Unmarshal([]byte(s), &j) != nil || j.Msg != "mail log" || j.Line == "" {
		return "", false
	}
	return j.Line, true
}
