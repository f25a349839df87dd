package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// postfixLog is a message's log through Postfix and amavis to a Gmail
// refusal (twelve lines, every kind ParseLine reads and some it skips),
// as the companion reads it.
func postfixLog(b *testing.B) []string {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "internal", "postfixlog", "testdata", "hostile", "amavis-guess.log"))
	if err != nil {
		b.Fatal(err)
	}
	return append(strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n"),
		"Dec  5 01:00:01 mx1 postfix/smtpd[2107]: connect from mx.attacker.example[203.0.113.66]",
		"Dec  5 01:00:02 mx1 postfix/qmgr[900]: 4C2B7985118: removed")
}

// BenchmarkParseLine is the companion's parser per line: how many log
// lines a second one core reads.
func BenchmarkParseLine(b *testing.B) {
	lines := postfixLog(b)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, l := range lines {
			postfixlog.ParseLine(l)
		}
		n += len(lines)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkTrack is parsing and tracking: the tracker's work per line on
// top of the parser's.
func BenchmarkTrack(b *testing.B) {
	lines := postfixLog(b)
	tr := &postfixlog.Tracker{}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, l := range lines {
			if e, ok := postfixlog.ParseLine(l); ok {
				tr.Add(e)
			}
		}
		n += len(lines)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}
