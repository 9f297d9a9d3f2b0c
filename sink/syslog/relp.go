package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/ucp-audit/ucp-audit/sink"
)

// RELP (https://www.rsyslog.com/doc/relp.html, librelp): every frame is
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] TRAILER
//
// with TXNR 1-999999999 (0 for "serverclose"), COMMAND 1-32 letters, DATALEN
// the byte length of DATA in decimal (at most 9 digits) and TRAILER LF. The
// client opens with "open" (offering the commands it uses), sends "syslog"
// frames, and ends with "close"; the server answers each frame with "rsp"
// and the same TXNR, whose DATA starts with a three-digit status ("200 OK").

const (
	relpMaxTxnr    = 999999999
	relpMaxRspData = 64 << 10 // a response is a status line plus offers
	relpOffers     = "relp_version=0\nrelp_software=ucp-audit\ncommands=syslog"
)

var errServerClose = errors.New("relp: the receiver is closing the session (serverclose)")

// relpFrame is one parsed frame.
type relpFrame struct {
	txnr int
	cmd  string
	data []byte
}

// readRelpFrame reads one frame from r, rejecting anything malformed and
// DATA longer than maxData.
func readRelpFrame(r *bufio.Reader, maxData int) (relpFrame, error) {
	var fr relpFrame
	txnr, sep, err := readRelpNumber(r, "TXNR")
	if err != nil {
		return fr, err
	}
	if sep != ' ' {
		return fr, fmt.Errorf("relp: malformed frame: expected space after TXNR %d", txnr)
	}
	fr.txnr = txnr
	var cmd [32]byte
	n := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			return fr, relpEOF(err)
		}
		if c == ' ' && n > 0 {
			break
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') || n == len(cmd) {
			return fr, fmt.Errorf("relp: malformed frame: bad COMMAND (byte %q after %q)", c, cmd[:n])
		}
		cmd[n] = c
		n++
	}
	fr.cmd = string(cmd[:n])
	size, sep, err := readRelpNumber(r, "DATALEN")
	if err != nil {
		return fr, err
	}
	if size > maxData {
		return fr, fmt.Errorf("relp: %s frame of %d bytes exceeds the limit of %d", fr.cmd, size, maxData)
	}
	if sep == ' ' {
		if size > 0 {
			fr.data = make([]byte, size)
			if _, err := io.ReadFull(r, fr.data); err != nil {
				return fr, relpEOF(err)
			}
		}
		if sep, err = r.ReadByte(); err != nil {
			return fr, relpEOF(err)
		}
	} else if size > 0 {
		return fr, fmt.Errorf("relp: malformed frame: expected space after DATALEN %d", size)
	}
	if sep != '\n' {
		return fr, fmt.Errorf("relp: malformed frame: trailer is %q, not LF", sep)
	}
	return fr, nil
}

// readRelpNumber reads 1-9 decimal digits and returns the number and the
// byte that followed them.
func readRelpNumber(r *bufio.Reader, what string) (n int, next byte, err error) {
	for digits := 0; ; digits++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, 0, relpEOF(err)
		}
		if c < '0' || c > '9' {
			if digits == 0 {
				return 0, 0, fmt.Errorf("relp: malformed frame: %s expected, got %q", what, c)
			}
			return n, c, nil
		}
		if digits == 9 {
			return 0, 0, fmt.Errorf("relp: malformed frame: %s longer than 9 digits", what)
		}
		n = n*10 + int(c-'0')
	}
}

func relpEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("relp: connection closed by the receiver: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// relpStatus returns the status code of a rsp frame's data ("200 OK…") and
// its first line.
func relpStatus(data []byte) (int, string) {
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ') {
		return 0, string(line)
	}
	code, err := strconv.Atoi(string(line[:3]))
	if err != nil {
		return 0, string(line)
	}
	return code, string(line)
}

func (c *conn) nextTxnr() int {
	c.txnr++
	if c.txnr > relpMaxTxnr {
		c.txnr = 1
	}
	return c.txnr
}

func (c *conn) writeRelpFrame(txnr int, cmd string, data []byte) {
	var hdr [48]byte
	b := strconv.AppendInt(hdr[:0], int64(txnr), 10)
	b = append(b, ' ')
	b = append(b, cmd...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(data)), 10)
	if len(data) > 0 {
		b = append(b, ' ')
	}
	c.w.Write(b)
	c.w.Write(data)
	c.w.WriteByte('\n')
}

// readRsp reads the next frame, which must be a rsp; serverclose is
// errServerClose.
func (c *conn) readRsp() (relpFrame, error) {
	if c.r.Buffered() == 0 {
		quickAck(c.nc)
	}
	fr, err := readRelpFrame(c.r, relpMaxRspData)
	if err != nil {
		return fr, err
	}
	switch fr.cmd {
	case "rsp":
		return fr, nil
	case "serverclose":
		return fr, errServerClose
	}
	return fr, fmt.Errorf("relp: unexpected %q frame from the receiver", fr.cmd)
}

// relpOpen opens the session on a fresh connection.
func (c *conn) relpOpen() error {
	c.txnr = 0
	txnr := c.nextTxnr()
	c.writeRelpFrame(txnr, "open", []byte(relpOffers))
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("relp open: %w", err)
	}
	fr, err := c.readRsp()
	if err != nil {
		return fmt.Errorf("relp open: %w", err)
	}
	if fr.txnr != txnr {
		return fmt.Errorf("relp open: response for txnr %d, want %d", fr.txnr, txnr)
	}
	if code, line := relpStatus(fr.data); code != 200 {
		return fmt.Errorf("relp open: receiver refused the session: %q", line)
	}
	for _, l := range bytes.Split(fr.data, []byte{'\n'}) {
		if cmds, ok := bytes.CutPrefix(l, []byte("commands=")); ok {
			found := false
			for _, c := range bytes.Split(cmds, []byte{','}) {
				found = found || string(c) == "syslog"
			}
			if !found {
				return fmt.Errorf("relp open: receiver does not offer the syslog command (commands=%s)", cmds)
			}
		}
	}
	return nil
}

// relpSend sends every message of the batch as a syslog frame, with at most
// relpWindow unanswered, and returns nil only when all were answered 200.
func (c *conn) relpSend(f *forwarder, batch []sink.Event) error {
	pending := make(map[int]int, min(len(batch), relpWindow)) // txnr → batch index
	ack := func() error {
		fr, err := c.readRsp()
		if err != nil {
			return err
		}
		i, ok := pending[fr.txnr]
		if !ok {
			return fmt.Errorf("relp: response for unknown txnr %d", fr.txnr)
		}
		delete(pending, fr.txnr)
		if code, line := relpStatus(fr.data); code != 200 {
			return fmt.Errorf("relp: receiver refused event seq %d: %q", batch[i].Seq, line)
		}
		return nil
	}
	for i := range batch {
		if len(pending) == relpWindow {
			if err := c.w.Flush(); err != nil {
				return err
			}
			if err := ack(); err != nil {
				return err
			}
		}
		txnr := c.nextTxnr()
		pending[txnr] = i
		c.writeRelpFrame(txnr, "syslog", f.msg(i))
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	for len(pending) > 0 {
		if err := ack(); err != nil {
			return err
		}
	}
	return nil
}

// relpClose ends the session: close, then wait for its rsp (or serverclose).
func (c *conn) relpClose() error {
	txnr := c.nextTxnr()
	c.writeRelpFrame(txnr, "close", nil)
	if err := c.w.Flush(); err != nil {
		return err
	}
	for {
		fr, err := c.readRsp()
		if err != nil {
			if errors.Is(err, errServerClose) {
				return nil
			}
			return err
		}
		if fr.txnr == txnr {
			return nil
		}
	}
}
