package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadIDs(t *testing.T) {
	got, err := ReadIDs([]string{"A1", "-", "B2", "-"}, strings.NewReader("C3 ready 120\n\n  D4\nA1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A1", "C3", "D4", "B2"}; !cmp.Equal(got, want) {
		t.Errorf("ReadIDs = %q; want %q", got, want)
	}
}

func TestStanding(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		m    Message
		want string
	}{
		{Message{State: "ready"}, ""},
		{Message{State: "ready", Attempts: 1, LastReply: "451 later"}, "1 attempt; due now; last reply: 451 later"},
		{Message{State: "ready", Attempts: 2, NextAttempt: now.Add(time.Hour)}, "2 attempts; next attempt 2026-11-22 11:00:00"},
		{Message{State: "held"}, "held; not delivered until released"},
	} {
		if got := tt.m.Standing(now); got != tt.want {
			t.Errorf("Standing(%+v) = %q; want %q", tt.m, got, tt.want)
		}
	}
}

func TestResultString(t *testing.T) {
	for _, tt := range []struct {
		r    Result
		want string
	}{
		{Result{ID: "X", Outcome: Done, From: "ready", To: "held", Detail: "held"}, "X: held (ready -> held)"},
		{Result{ID: "X", Outcome: Done, From: "ready", Detail: "deleted"}, "X: deleted (was ready)"},
		{Result{ID: "X", Outcome: Unchanged, Detail: "already held"}, "X: unchanged, already held"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q; want %q", tt.r, got, tt.want)
		}
	}
}
