package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// session is one connection; only its goroutine uses it.
type session struct {
	f    *FakeSMTP
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	conn int
	helo string
	tx   *Transaction // the transaction in progress, if any
	// lineStart is whether the next content read starts a line.
	lineStart bool
}

// errHangUp ends a session after a fault.
var errHangUp = errors.New("hang up")

const maxData = 64 << 20 // content kept per transaction; more is read and dropped

func (s *session) serve() {
	defer s.endTx(NoFault)
	sc := s.snapshot()
	host := sc.Hostname
	if _, err := s.answer(StageConnect, "", "220 "+host+" ESMTP fake"); err != nil {
		return
	}
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				s.write("500 5.5.2 Error: line too long")
				s.w.Flush()
			}
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		if err := s.command(strings.ToUpper(verb), strings.TrimSpace(arg)); err != nil {
			return
		}
	}
}

// command runs one command; an error ends the session.
func (s *session) command(verb, arg string) error {
	switch verb {
	case "HELO", "EHLO":
		s.endTx(NoFault)
		s.helo = arg
		sc := s.snapshot()
		def := "250 " + sc.Hostname
		if verb == "EHLO" && len(sc.Capabilities) > 0 {
			lines := []string{"250-" + sc.Hostname}
			for i, c := range sc.Capabilities {
				sep := "-"
				if i == len(sc.Capabilities)-1 {
					sep = " "
				}
				lines = append(lines, "250"+sep+c)
			}
			def = strings.Join(lines, "\r\n")
		}
		_, err := s.answer(StageHelo, arg, def)
		return err

	case "MAIL":
		if s.tx != nil {
			return s.reply("503 5.5.1 Error: nested MAIL command")
		}
		addr, params, ok := pathArg(arg, "FROM:")
		if !ok {
			return s.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
		}
		s.tx = &Transaction{Conn: s.conn, Client: s.c.RemoteAddr().String(), Helo: s.helo, MailFrom: addr, MailParams: params}
		reply, err := s.answer(StageMail, addr, "250 2.1.0 Ok")
		if err != nil {
			return err // a fault; endTx has recorded the transaction
		}
		s.tx.MailReply = reply
		if !positive(reply) {
			s.endTx(NoFault)
		}
		return nil

	case "RCPT":
		if s.tx == nil {
			return s.reply("503 5.5.1 Error: need MAIL command")
		}
		addr, params, ok := pathArg(arg, "TO:")
		if !ok {
			return s.reply("501 5.5.4 Syntax: RCPT TO:<address>")
		}
		// Recorded first, so that a fault's record has it too.
		s.tx.Rcpts = append(s.tx.Rcpts, Rcpt{Addr: addr, Params: params})
		i := len(s.tx.Rcpts) - 1
		reply, err := s.answer(StageRcpt, addr, "250 2.1.5 Ok")
		if err != nil {
			return err
		}
		s.tx.Rcpts[i].Reply = reply
		return nil

	case "DATA":
		if s.tx == nil {
			return s.reply("503 5.5.1 Error: need RCPT command")
		}
		if len(s.tx.To()) == 0 {
			return s.reply("554 5.5.1 Error: no valid recipients")
		}
		reply, err := s.answer(StageData, "", "354 End data with <CR><LF>.<CR><LF>")
		if err != nil {
			return err
		}
		s.tx.DataReply = reply
		if !strings.HasPrefix(reply, "3") {
			return nil
		}
		if err := s.readContent(); err != nil {
			return err
		}
		s.f.mu.Lock()
		s.f.ids++
		id := s.f.ids
		s.f.mu.Unlock()
		raw, reply, err := s.decide(StageEndOfData, "", fmt.Sprintf("250 2.0.0 Ok: queued as FAKE%06d", id))
		if err != nil {
			return err
		}
		// Recorded before the reply goes out: a test that heard the
		// relay pass this reply on finds the transaction at once.
		s.tx.Reply = reply
		s.endTx(NoFault)
		return s.reply(raw)

	case "RSET":
		s.endTx(NoFault)
		return s.reply("250 2.0.0 Ok")
	case "NOOP":
		return s.reply("250 2.0.0 Ok")
	case "QUIT":
		s.endTx(NoFault)
		s.write("221 2.0.0 Bye")
		s.w.Flush()
		return errHangUp
	}
	return s.reply("502 5.5.2 Error: command not recognized")
}

// pathArg parses "FROM:<addr> PARAMS" (or "TO:"), tolerating a space after
// the colon.
func pathArg(arg, prefix string) (addr, params string, ok bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if strings.HasPrefix(rest, "<") {
		i := strings.IndexByte(rest, '>')
		if i < 0 {
			return "", "", false
		}
		return rest[1:i], strings.TrimSpace(rest[i+1:]), true
	}
	addr, params, _ = strings.Cut(rest, " ")
	return addr, strings.TrimSpace(params), addr != ""
}

// snapshot returns the script with its defaults filled in.
func (s *session) snapshot() Script {
	s.f.mu.Lock()
	sc := s.f.script
	s.f.mu.Unlock()
	if sc.Hostname == "" {
		sc.Hostname = "fake.relaykeeper.test"
	}
	if sc.Capabilities == nil {
		sc.Capabilities = defaultCapabilities
	}
	if sc.MaxStall == 0 {
		sc.MaxStall = 30 * time.Second
	}
	if sc.IdleTimeout == 0 {
		sc.IdleTimeout = 30 * time.Second
	}
	return sc
}

// response picks the script's Response for a stage.
func (s *session) response(stage Stage, arg string) (Response, Script) {
	s.f.mu.Lock()
	var r Response
	sc := s.f.script
	switch stage {
	case StageConnect:
		r = sc.Greeting
	case StageHelo:
		r = sc.Helo
	case StageMail:
		r = sc.Mail
	case StageRcpt:
		r = sc.Rcpt
		for k, v := range sc.RcptFor {
			if strings.EqualFold(k, arg) {
				r = v
				break
			}
		}
	case StageData:
		r = sc.Data
	case StageContent:
		r = sc.Content
	case StageEndOfData:
		r = sc.EndOfData
	}
	s.f.mu.Unlock()
	if sc.Decide != nil {
		tx := Transaction{Conn: s.conn, Client: s.c.RemoteAddr().String(), Helo: s.helo}
		if s.tx != nil {
			tx = s.tx.clone()
		}
		if d := sc.Decide(stage, tx, arg); d != (Response{}) {
			r = d
		}
	}
	return r, s.snapshot()
}

// answer stalls, replies or faults as the script says at stage, and
// returns the reply sent. An error ends the session.
func (s *session) answer(stage Stage, arg, def string) (string, error) {
	raw, reply, err := s.decide(stage, arg, def)
	if err != nil {
		return "", err
	}
	return reply, s.reply(raw)
}

// decide stalls or faults as the script says at stage, and returns the
// reply to send (raw) and its normalized form, without sending it.
func (s *session) decide(stage Stage, arg, def string) (raw, reply string, err error) {
	r, sc := s.response(stage, arg)
	if err := s.stall(r.Delay, sc.MaxStall); err != nil {
		return "", "", err
	}
	if r.Fault != NoFault {
		return "", "", s.fault(r)
	}
	raw = r.Reply
	if raw == "" {
		raw = def
	}
	return raw, normalize(raw), nil
}

// stall flushes what is pending and waits d (at most limit), or until the
// server closes.
func (s *session) stall(d, limit time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	timer := time.NewTimer(min(d, limit))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-s.f.closing:
		return errHangUp
	}
}

// fault carries out r.Fault; pending replies are sent first.
func (s *session) fault(r Response) error {
	switch r.Fault {
	case Close421:
		reply := r.Reply
		if reply == "" {
			reply = "421 4.3.2 Service shutting down"
		}
		s.write(reply)
		s.w.Flush()
	case Reset:
		s.w.Flush()
		if tc, ok := s.c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	default:
		s.w.Flush()
	}
	s.endTx(r.Fault)
	return errHangUp
}

// reply writes one reply, and flushes unless more pipelined commands are
// already buffered (RFC 2920 section 3.2: the server may batch replies).
func (s *session) reply(reply string) error {
	s.write(reply)
	if s.commandBuffered() {
		return nil
	}
	return s.w.Flush()
}

// commandBuffered reports whether a whole command line has been read from
// the client and not yet handled.
func (s *session) commandBuffered() bool {
	b, _ := s.r.Peek(s.r.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

func (s *session) write(reply string) {
	s.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	s.w.WriteString(normalize(reply))
	s.w.WriteString("\r\n")
}

// normalize makes every line of a reply end in CRLF, except the last, which
// has no line ending.
func normalize(reply string) string {
	reply = strings.TrimRight(reply, "\r\n")
	lines := strings.Split(reply, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return strings.Join(lines, "\r\n")
}

// readLine reads one command line, without its line ending.
func (s *session) readLine() (string, error) {
	if !s.commandBuffered() {
		if err := s.w.Flush(); err != nil {
			return "", err
		}
	}
	s.c.SetReadDeadline(time.Now().Add(s.snapshot().IdleTimeout))
	line, err := s.r.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// readContent reads the message content up to the final ".", dot-unstuffs
// it into s.tx.Data, and carries out the script's content stall or fault.
func (s *session) readContent() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	r, sc := s.response(StageContent, "")
	pending := r != (Response{})
	var data bytes.Buffer
	defer func() {
		if s.tx != nil {
			s.tx.Data = data.Bytes()
		}
	}()
	s.lineStart = true
	read := 0
	for {
		if pending && read >= r.After {
			pending = false
			if err := s.stall(r.Delay, sc.MaxStall); err != nil {
				return err
			}
			if r.Fault != NoFault {
				s.tx.Data = data.Bytes()
				return s.fault(r)
			}
		}
		s.c.SetReadDeadline(time.Now().Add(sc.IdleTimeout))
		line, err := s.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		read += len(line)
		if err == nil && (string(line) == ".\r\n" || string(line) == ".\n") {
			return nil
		}
		// Only a line's first byte can be a stuffed dot; a long line
		// arrives in several pieces, so remember where lines start.
		if bytes.HasPrefix(line, []byte(".")) && s.lineStart {
			line = line[1:]
		}
		s.lineStart = err == nil
		if data.Len() < maxData {
			data.Write(line)
		}
	}
}

// endTx records the transaction in progress, if any.
func (s *session) endTx(fault Fault) {
	if s.tx == nil {
		return
	}
	tx := *s.tx
	s.tx = nil
	if fault != NoFault {
		tx.Fault = fault
	}
	tx.Aborted = tx.Reply == ""
	s.f.mu.Lock()
	s.f.txs = append(s.f.txs, tx)
	s.f.mu.Unlock()
}
