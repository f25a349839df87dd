package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The golden mail log and reports live with package stats.
var (
	goldenLog    = filepath.Join("..", "..", "internal", "stats", "testdata", "mail.log")
	goldenReport = filepath.Join("..", "..", "internal", "stats", "testdata", "report.txt.golden")
)

func runStatsTest(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := runStats(args, strings.NewReader(stdin), &out, &errb)
	return status, out.String(), errb.String()
}

func TestStatsGolden(t *testing.T) {
	status, got, errs := runStatsTest(t, "", goldenLog)
	if status != 0 || errs != "" {
		t.Fatalf("stats = %d, %q", status, errs)
	}
	if *update {
		if err := os.WriteFile(goldenReport, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenReport)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("stats differs from %s (-want +got):\n%s", goldenReport, d)
	}

	// The same log on stdin, as "-" or with no file at all.
	log, err := os.ReadFile(goldenLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-"}, nil} {
		if _, out, _ := runStatsTest(t, string(log), args...); out != got {
			t.Errorf("stats %v with the log on stdin differs:\n%s", args, out)
		}
	}

	// Compressed, as logrotate leaves it.
	gz := filepath.Join(t.TempDir(), "mail.log.1.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(log)
	zw.Close()
	os.WriteFile(gz, buf.Bytes(), 0o644)
	if _, out, _ := runStatsTest(t, "", gz); out != got {
		t.Errorf("stats of the gzipped log differs:\n%s", out)
	}
}

func TestStatsJSON(t *testing.T) {
	// Two files: everything counts twice, and --top cuts the lists.
	status, out, errs := runStatsTest(t, "", "--json", goldenLog, "--top", "2", goldenLog)
	if status != 0 {
		t.Fatalf("stats --json = %d, %q", status, errs)
	}
	var got stats.Report
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	a := stats.NewAggregator()
	for range 2 {
		f, _ := os.Open(goldenLog)
		a.Read(f)
		f.Close()
	}
	want := a.Report(2)
	if d := cmp.Diff(want, &got); d != "" {
		t.Errorf("stats --json round trip (-want +got):\n%s", d)
	}
	if got.Received.Messages != 8 || len(got.Senders) != 2 || !strings.Contains(out, `<ADDR>`) {
		t.Errorf("stats --json of two copies: received %d, %d senders; want 8 and 2\n%s", got.Received.Messages, len(got.Senders), out)
	}
}

func TestStatsErrors(t *testing.T) {
	tests := []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"--top", "0"}, 2, `--top "0": want a number of at least 1`},
		{[]string{"--top", "x"}, 2, `--top "x"`},
		{[]string{"--frob"}, 2, "unknown switch --frob"},
		{[]string{filepath.Join(t.TempDir(), "missing.log")}, 1, "missing.log: no such file"},
	}
	for _, tt := range tests {
		status, out, errs := runStatsTest(t, "", tt.args...)
		if status != tt.status || out != "" || !strings.Contains(errs, tt.want) {
			t.Errorf("stats %v = %d, %q, %q; want %d and %q", tt.args, status, out, errs, tt.status, tt.want)
		}
	}
	if status, out, _ := runStatsTest(t, "", "--help"); status != 0 || !strings.HasPrefix(out, "usage: relaykeeper stats") {
		t.Errorf("stats --help = %d, %q", status, out)
	}
	if _, out, _ := runStatsTest(t, "time=x level=INFO msg=hi\n"); !strings.Contains(out, "no mail-log lines") ||
		!strings.Contains(out, "1   lines read, 1 skipped") {
		t.Errorf("stats of a diagnostic log only:\n%s", out)
	}
}
