package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// wireConn is one sender's keep-alive HTTP/1.1 connection, spoken directly: a
// request is one write of bytes built beforehand, its answer one read of a status
// line, headers and a Content-Length body. The load generator shares two cores with
// the server and the database, so what it spends is taken from what it measures;
// net/http's client costs several times more per request (compare with
// -client net/http). Like wrk or pgbench, it speaks only what the measurement
// needs: no TLS, no redirects, no proxies.
type wireConn struct {
	addr, host, path string
	conn             net.Conn
	r                *bufio.Reader
	buf              []byte // the request being built, reused
}

// newWireConn checks that target is a plain http:// URL; it connects on first use.
func newWireConn(target string) (*wireConn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("-url: -client wire speaks plain http only (got %q); use -client net/http", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &wireConn{addr: addr, host: u.Host, path: u.RequestURI()}, nil
}

func (c *wireConn) Close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// post sends body with its signature and returns the answer's status and body. A
// connection the server closed before answering is redialled once: the request was
// not read, so sending it again is what any HTTP client does.
func (c *wireConn) post(ctx context.Context, body []byte, signature string) (int, []byte, error) {
	c.buf = append(c.buf[:0], "POST "...)
	c.buf = append(c.buf, c.path...)
	c.buf = append(c.buf, " HTTP/1.1\r\nHost: "...)
	c.buf = append(c.buf, c.host...)
	c.buf = append(c.buf, "\r\nUser-Agent: webhookload\r\nContent-Type: application/json; charset=utf-8\r\nStripe-Signature: "...)
	c.buf = append(c.buf, signature...)
	c.buf = append(c.buf, "\r\nContent-Length: "...)
	c.buf = strconv.AppendInt(c.buf, int64(len(body)), 10)
	c.buf = append(c.buf, "\r\n\r\n"...)
	c.buf = append(c.buf, body...)

	for attempt := 0; ; attempt++ {
		fresh := c.conn == nil
		if fresh {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", c.addr)
			if err != nil {
				return 0, nil, err
			}
			c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
		}
		if deadline, ok := ctx.Deadline(); ok {
			_ = c.conn.SetDeadline(deadline)
		} else {
			_ = c.conn.SetDeadline(time.Time{})
		}
		status, answer, keep, err := c.roundTrip()
		if err == nil {
			if !keep {
				c.Close()
			}
			return status, answer, nil
		}
		c.Close()
		// A kept-alive connection may have been closed by the server while idle, and
		// the request then never reached a handler: it is sent once more on a new one.
		// Were it read after all, the route answers the repeat as a repeat.
		if fresh || attempt > 0 {
			return 0, nil, err
		}
	}
}

// roundTrip writes the built request and reads one answer. keep is false when the
// server said it will close the connection.
func (c *wireConn) roundTrip() (status int, body []byte, keep bool, err error) {
	if _, err := c.conn.Write(c.buf); err != nil {
		return 0, nil, false, err
	}
	line, err := c.line()
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("malformed status line %q", line)
	}
	length, keep := -1, true
	for {
		h, err := c.line()
		if err != nil {
			return 0, nil, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, false, fmt.Errorf("malformed header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, nil, false, fmt.Errorf("answer with Transfer-Encoding %q: use -client net/http", value)
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		}
	}
	if length < 0 {
		return 0, nil, false, errors.New("answer without Content-Length: use -client net/http")
	}
	body = make([]byte, length)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, false, err
	}
	return status, body, keep, nil
}

// line reads one header line without its CRLF.
func (c *wireConn) line() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("header line too long")
		}
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}
