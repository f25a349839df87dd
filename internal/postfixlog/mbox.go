package postfixlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNotInMbox is FindInMbox's error for a message id that the mailbox
// does not hold.
var ErrNotInMbox = errors.New("postfixlog: no such message in the mailbox")

// maxMboxMessage bounds a message FindInMbox keeps in memory.
const maxMboxMessage = 64 << 20

// FindInMbox returns the last message in the mbox file at path whose
// Message-ID is messageID (compared without angle brackets, spaces and
// regard to case): the backup that Postfix's always_bcc and local(8) keep
// of every relayed message, from which a refused one is taken to be sent on
// encapsulated.
//
// The message is returned as it was before it was stored: without the
// "From " separator line, with ">From " lines unquoted (mboxrd: one '>'
// removed from a line of '>'s and "From "), and without the Return-Path,
// X-Original-To and Delivered-To fields that local(8) puts at its top.
// Lines end in LF, as in the file. The file is read from start to end, so
// a backup mailbox should be rotated like a log.
//
// With queueIDs, only a copy whose first Received field Postfix wrote for
// one of them ("... with ESMTP id QUEUEID ...") counts: a Message-ID is the
// sender's text, and anyone can send another message with the same one
// (a copy of it stored later would otherwise be the one sent on, under the
// relay's name, to the refused message's recipient). The first, because
// the fields below it are the sender's text too.
func FindInMbox(path, messageID string, queueIDs ...string) ([]byte, error) {
	want := normalID(messageID)
	if want == "" {
		return nil, fmt.Errorf("postfixlog: mbox %s: no message id to look for", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("postfixlog: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)

	var found, cur []byte
	var inHeader, match, queued, prevBlank, tooBig bool
	var lastField string
	var received strings.Builder // the first Received field, being read
	var receivedDone bool
	checkReceived := func() {
		if received.Len() > 0 && !receivedDone {
			queued, receivedDone = receivedFor(received.String(), queueIDs), true
		}
	}
	started := false
	finish := func() {
		checkReceived()
		if started && match && (queued || len(queueIDs) == 0) && !tooBig {
			// The blank line before the next separator belongs to the mbox.
			found = bytes.Clone(bytes.TrimSuffix(cur, []byte("\n")))
			if !bytes.HasSuffix(found, []byte("\n")) {
				found = append(found, '\n')
			}
		}
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if bytes.HasPrefix(line, []byte("From ")) && (prevBlank || !started) {
				finish()
				cur, started, inHeader, match, queued, tooBig, lastField = cur[:0], true, true, false, false, false, ""
				received.Reset()
				receivedDone = false
				prevBlank = false
				continue
			}
			prevBlank = len(bytes.TrimRight(line, "\r\n")) == 0
			if !started {
				continue
			}
			if inHeader {
				switch {
				case prevBlank:
					inHeader = false
					checkReceived()
				case line[0] == ' ' || line[0] == '\t':
					if lastField == "message-id" && !match {
						match = normalID(string(line)) == want
					}
					if lastField == "received" && !receivedDone && received.Len() < 4096 {
						received.Write(line)
					}
				default:
					checkReceived()
					name, value, _ := strings.Cut(string(line), ":")
					lastField = strings.ToLower(strings.TrimSpace(name))
					if lastField == "message-id" {
						match = normalID(value) == want
					}
					if lastField == "received" && !receivedDone {
						received.WriteString(value)
					}
				}
			}
			if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
				line = line[1:]
			}
			if len(cur)+len(line) > maxMboxMessage {
				tooBig = true
			} else if !tooBig {
				cur = append(cur, line...)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("postfixlog: %w", err)
		}
	}
	finish()
	if found == nil {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotInMbox, messageID, path)
	}
	return stripDeliveryFields(found), nil
}

// receivedFor reports whether a Received field's value names one of the
// queue ids as Postfix writes it: "id QUEUEID" (smtpd's "with ESMTP id
// 4C2B7985118", pickup's "(Postfix, from userid 0) id 4C2B7985118").
//
// The client writes parts of smtpd's field: the recipient of "for <RCPT>"
// at its end, when it gave one (a quoted local part `"a id 4C2B7985118"`
// spells another message's queue id), and before Postfix's "by" the HELO
// name and, with smtpd_tls_ask_ccert, its certificate's CN. So the words
// after "for <" are not read, and the id is the last "id QUEUEID" before
// them: Postfix's own.
func receivedFor(value string, queueIDs []string) bool {
	f := strings.Fields(value)
	last := ""
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "for" && strings.HasPrefix(f[i+1], "<") {
			break
		}
		if id := strings.TrimRight(f[i+1], ";"); f[i] == "id" && isQueueID(id) {
			last = id
		}
	}
	for _, q := range queueIDs {
		if q != "" && last == q {
			return true
		}
	}
	return false
}

// stripDeliveryFields removes the fields local(8) prepends to a message it
// stores: Return-Path first, then X-Original-To and Delivered-To.
func stripDeliveryFields(msg []byte) []byte {
	if !bytes.HasPrefix(bytes.ToLower(msg[:min(len(msg), 12)]), []byte("return-path:")) {
		return msg
	}
	for _, name := range []string{"return-path:", "x-original-to:", "delivered-to:"} {
		for {
			end := bytes.IndexByte(msg, '\n')
			if end < 0 || !bytes.HasPrefix(bytes.ToLower(msg[:min(len(msg), len(name))]), []byte(name)) {
				break
			}
			msg = msg[end+1:]
		}
	}
	return msg
}

// normalID is a message id without angle brackets, spaces or case.
func normalID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	if i := strings.IndexByte(s, '>'); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(strings.TrimSpace(s))
}
