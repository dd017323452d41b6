package notifications

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const (
	// smtpIOTimeout bounds the dial and every read or write, so one SMTP command
	// that hangs fails the send instead of holding a worker.
	smtpIOTimeout = 10 * time.Second
	// smtpSessionTimeout bounds a whole send, whatever the caller's context allows.
	smtpSessionTimeout = time.Minute
)

// SMTPMailer sends through one SMTP server. It is safe for concurrent use; each Send
// is its own connection. Printing it never shows the password.
type SMTPMailer struct {
	host        string // checked against the server's certificate; AUTH is bound to it
	addr        string // host:port
	implicitTLS bool   // smtps: TLS from the first byte
	user, pass  string
	from        *mail.Address
	timeout     time.Duration

	// tlsConfig replaces the default (system roots, TLS 1.2+); tests trust their
	// own certificate with it.
	tlsConfig *tls.Config
	// dial replaces the network dialer; tests reach a local server under any host name.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewSMTP builds the mailer from SMTP_URL:
//
//	smtp://user:pass@host:port   STARTTLS when offered; required when credentials
//	                             are given and host is not localhost/127.0.0.1/::1
//	smtps://user:pass@host:port  TLS from the first byte
//
// The port defaults to 587 (smtp) or 465 (smtps). The sender is the query parameter
// from, e.g. ?from=Scoville%20%3Cbox@brand.example%3E, by default no-reply@host.
// Errors say what is wrong with the URL and never repeat the password.
func NewSMTP(rawURL string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil { // url.Parse's message quotes the whole URL, password included
		return nil, errors.New("notifications: SMTP_URL is not a valid URL; expected smtp://user:pass@host:port or smtps://user:pass@host:port")
	}
	m := &SMTPMailer{timeout: smtpIOTimeout}
	var port string
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		port, m.implicitTLS = "465", true
	default:
		return nil, fmt.Errorf("notifications: SMTP_URL scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, errors.New("notifications: SMTP_URL has no host; expected smtp://user:pass@host:port")
	}
	m.host = u.Hostname()
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("notifications: SMTP_URL port %q is not between 1 and 65535", p)
		}
		port = p
	}
	m.addr = net.JoinHostPort(m.host, port)
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("notifications: SMTP_URL must not have a path")
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
		if m.user == "" && m.pass != "" {
			return nil, errors.New("notifications: SMTP_URL has a password but no user name")
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New("notifications: SMTP_URL query is malformed")
	}
	for k := range q {
		if k != "from" {
			return nil, fmt.Errorf("notifications: SMTP_URL has unknown parameter %q (only from is known)", k)
		}
	}
	from := q.Get("from")
	if from == "" {
		from = "no-reply@" + m.host
	}
	if m.from, err = mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("notifications: SMTP_URL sender %q is not an e-mail address (set ?from=)", from)
	}
	return m, nil
}

// String describes the mailer without its credentials.
func (m *SMTPMailer) String() string {
	scheme := "smtp"
	if m.implicitTLS {
		scheme = "smtps"
	}
	return scheme + "://" + m.addr
}

// Send delivers msg in one SMTP session, bounded by ctx and by per-command timeouts.
// A To or Subject containing a line break is refused before anything is sent, and
// errors never quote the recipient's address.
func (m *SMTPMailer) Send(ctx context.Context, msg Message) error {
	if strings.ContainsAny(msg.To, "\r\n") {
		return errors.New("notifications: smtp: recipient contains a line break")
	}
	if strings.ContainsAny(msg.Subject, "\r\n") {
		return errors.New("notifications: smtp: subject contains a line break")
	}
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return errors.New("notifications: smtp: recipient is not an e-mail address")
	}
	body, err := m.render(to.Address, msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, smtpSessionTimeout)
	defer cancel()
	return scrub(m.deliver(ctx, to.Address, body), to.Address)
}

// render builds the message: headers, then the body as quoted-printable UTF-8, which
// any server accepts whatever the characters.
func (m *SMTPMailer) render(to string, msg Message) ([]byte, error) {
	domain := m.from.Address[strings.LastIndexByte(m.from.Address, '@')+1:]
	id := messageIDLocal(msg.ID)
	var b bytes.Buffer
	for _, h := range [][2]string{
		{"From", m.from.String()},
		{"To", (&mail.Address{Address: to}).String()},
		{"Subject", mime.QEncoding.Encode("utf-8", msg.Subject)},
		{"Date", time.Now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + id + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(msg.Text)); err != nil {
		return nil, fmt.Errorf("notifications: smtp: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("notifications: smtp: encode body: %w", err)
	}
	return b.Bytes(), nil
}

// messageIDLocal is the left part of the Message-ID: the message's id in hex when it
// is a UUID (a notification's), so that a message sent again carries the same one;
// random otherwise.
func messageIDLocal(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return hex.EncodeToString(u[:])
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// deliver runs the session. Cancelling ctx closes the connection, which ends any
// command in progress.
func (m *SMTPMailer) deliver(ctx context.Context, to string, body []byte) error {
	dial := m.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: m.timeout}).DialContext
	}
	raw, err := dial(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("notifications: smtp: connect to %s: %w", m.addr, err)
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()

	var conn net.Conn = &deadlineConn{Conn: raw, timeout: m.timeout}
	if m.implicitTLS {
		tc := tls.Client(conn, m.tls())
		if err := tc.HandshakeContext(ctx); err != nil {
			return m.fail(ctx, "TLS handshake", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return m.fail(ctx, "greeting", err)
	}
	defer c.Close()

	if !m.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tls()); err != nil {
				return m.fail(ctx, "STARTTLS", err)
			}
		} else if m.user != "" && !isLoopback(m.host) {
			return fmt.Errorf("notifications: smtp: %s does not offer STARTTLS; refusing to send credentials unencrypted (use smtps:// if it takes TLS from the start)", m.addr)
		}
	}
	if m.user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("notifications: smtp: %s does not offer AUTH but SMTP_URL has credentials", m.addr)
		}
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return m.fail(ctx, "AUTH", err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return m.fail(ctx, "MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return m.fail(ctx, "RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return m.fail(ctx, "DATA", err)
	}
	if _, err := w.Write(body); err != nil {
		return m.fail(ctx, "DATA", err)
	}
	if err := w.Close(); err != nil {
		return m.fail(ctx, "DATA", err)
	}
	if err := c.Quit(); err != nil {
		return m.fail(ctx, "QUIT", err)
	}
	return nil
}

// fail names the step that failed, and the context's error when that is the cause
// rather than the closed connection it left behind.
func (m *SMTPMailer) fail(ctx context.Context, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("notifications: smtp %s to %s: %w", step, m.addr, ctxErr)
	}
	return fmt.Errorf("notifications: smtp %s to %s: %w", step, m.addr, err)
}

func (m *SMTPMailer) tls() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.tlsConfig != nil {
		cfg = m.tlsConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = m.host
	}
	return cfg
}

// isLoopback matches net/smtp's own notion of a local server, the only kind its
// PLAIN authentication talks to without TLS.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// deadlineConn gives every read and write its own deadline.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
