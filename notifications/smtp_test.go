package notifications

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// fakeSMTP is an in-process SMTP server that speaks just enough of the protocol for
// net/smtp: EHLO/HELO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
type fakeSMTP struct {
	ln         net.Listener
	tls        *tls.Config // the server's certificate
	startTLS   bool        // offer STARTTLS
	implicit   bool        // TLS from the first byte (smtps)
	auth       bool        // offer AUTH PLAIN
	rejectRcpt bool        // answer RCPT with a 550 that quotes the address
	silent     bool        // accept connections and never answer

	mu       sync.Mutex
	conns    int
	auths    []authAttempt
	received []received
	wg       sync.WaitGroup
}

type authAttempt struct {
	user, pass string
	overTLS    bool
}

type received struct {
	from, to string
	overTLS  bool
	data     []byte // dot-unstuffed, lines ending in "\n"
}

// serverTLS is a self-signed certificate for localhost, 127.0.0.1 and mail.example,
// and a client configuration that trusts it.
func serverTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake smtp"},
		DNSNames:              []string{"localhost", "mail.example"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: roots}
}

// start listens on a loopback port until the test ends.
func (s *fakeSMTP) start(t *testing.T) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if s.implicit {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(conn) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeSMTP) serve(conn net.Conn) {
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if s.silent {
		_, _ = io.Copy(io.Discard, conn) // until the client gives up
		return
	}
	tp := textproto.NewConn(conn)
	overTLS := s.implicit
	var r received
	reply := func(format string, args ...any) { _ = tp.PrintfLine(format, args...) }
	reply("220 fake ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := []string{"fake greets you", "8BITMIME"}
			if s.startTLS && !overTLS {
				ext = append(ext, "STARTTLS")
			}
			if s.auth {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				reply("250%s%s", sep, e)
			}
		case "HELO", "RSET", "NOOP":
			reply("250 OK")
		case "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(conn, s.tls)
			if tc.Handshake() != nil {
				return
			}
			conn, tp, overTLS = tc, textproto.NewConn(tc), true
		case "AUTH":
			_, initial, _ := strings.Cut(arg, " ")
			raw, _ := base64.StdEncoding.DecodeString(initial)
			parts := strings.Split(string(raw), "\x00")
			if len(parts) != 3 {
				reply("501 malformed")
				continue
			}
			s.mu.Lock()
			s.auths = append(s.auths, authAttempt{user: parts[1], pass: parts[2], overTLS: overTLS})
			s.mu.Unlock()
			reply("235 2.7.0 accepted")
		case "MAIL":
			r.from = angle(arg)
			reply("250 OK")
		case "RCPT":
			if s.rejectRcpt {
				reply("550 5.1.1 <%s>: recipient address rejected", strings.ToUpper(angle(arg)))
				continue
			}
			r.to = angle(arg)
			reply("250 OK")
		case "DATA":
			reply("354 end with .")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			r.data, r.overTLS = data, overTLS
			s.mu.Lock()
			s.received = append(s.received, r)
			s.mu.Unlock()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

func angle(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

func (s *fakeSMTP) snapshot() (conns int, auths []authAttempt, got []received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, append([]authAttempt(nil), s.auths...), append([]received(nil), s.received...)
}

// requireNothingSent requires that no credentials and no message reached s.
func (s *fakeSMTP) requireNothingSent(t *testing.T) {
	t.Helper()
	_, auths, got := s.snapshot()
	require.Empty(t, auths, "credentials sent")
	require.Empty(t, got, "messages sent")
}

// mailerFor builds the mailer from rawURL, but dials s whatever host the URL names
// and trusts s's certificate.
func mailerFor(t *testing.T, s *fakeSMTP, rawURL string, trust *tls.Config) *SMTPMailer {
	t.Helper()
	m, err := NewSMTP(rawURL)
	require.NoError(t, err)
	m.tlsConfig = trust
	m.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, s.ln.Addr().String())
	}
	return m
}

func TestSMTPMailer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	serverCfg, trust := serverTLS(t)
	const password = "pa@ss-s3cret"
	escapedPassword := "pa%40ss-s3cret"

	t.Run("delivers a well-formed message to a local relay", func(t *testing.T) {
		t.Parallel()
		s := (&fakeSMTP{}).start(t)
		m := mailerFor(t, s, "smtp://localhost:25?from=Scoville%20%3Cbox@brand.example%3E", nil)
		text := "Hello,\n\n.a line that starts with a dot\nJalapeño — 🌶 = spicy\n" + strings.Repeat("long ", 40) + "end\n\nThe Scoville team\n"
		require.NoError(t, m.Send(ctx, Message{To: "ana@example.com", Subject: "Paiement reçu: 24,00 €", Text: text}))

		_, auths, got := s.snapshot()
		require.Empty(t, auths)
		require.Len(t, got, 1)
		require.Equal(t, "box@brand.example", got[0].from)
		require.Equal(t, "ana@example.com", got[0].to)

		msg, err := mail.ReadMessage(bytes.NewReader(got[0].data))
		require.NoError(t, err)
		from, err := mail.ParseAddress(msg.Header.Get("From"))
		require.NoError(t, err)
		require.Equal(t, &mail.Address{Name: "Scoville", Address: "box@brand.example"}, from)
		require.Equal(t, "<ana@example.com>", msg.Header.Get("To"))
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		require.NoError(t, err)
		require.Equal(t, "Paiement reçu: 24,00 €", subject)
		require.True(t, strings.HasPrefix(msg.Header.Get("Subject"), "=?utf-8?q?"), "non-ASCII subject is RFC 2047 encoded")
		date, err := msg.Header.Date()
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), date, time.Minute)
		require.Regexp(t, regexp.MustCompile(`^<[0-9a-f]{32}@brand\.example>$`), msg.Header.Get("Message-ID"))
		require.Equal(t, "1.0", msg.Header.Get("MIME-Version"))
		require.Equal(t, "text/plain; charset=utf-8", msg.Header.Get("Content-Type"))
		require.Equal(t, "quoted-printable", msg.Header.Get("Content-Transfer-Encoding"))

		raw, err := io.ReadAll(msg.Body)
		require.NoError(t, err)
		for _, line := range strings.Split(string(raw), "\n") {
			require.LessOrEqual(t, len(line), 76, "quoted-printable keeps lines short")
			for _, c := range []byte(line) {
				require.Less(t, c, byte(0x80), "the body is 7-bit on the wire")
			}
		}
		body, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		require.NoError(t, err)
		require.Equal(t, text, strings.ReplaceAll(string(body), "\r\n", "\n"))
	})

	t.Run("a message sent again carries the same Message-ID", func(t *testing.T) {
		t.Parallel()
		s := (&fakeSMTP{}).start(t)
		m := mailerFor(t, s, "smtp://localhost:25?from=box@brand.example", nil)
		id, other := uuid.NewString(), uuid.NewString()
		for _, msgID := range []string{id, id, other} {
			require.NoError(t, m.Send(ctx, Message{ID: msgID, To: "ana@example.com", Subject: "Payment received", Text: "Thanks"}))
		}
		_, _, got := s.snapshot()
		require.Len(t, got, 3)
		ids := make([]string, len(got))
		for i, r := range got {
			msg, err := mail.ReadMessage(bytes.NewReader(r.data))
			require.NoError(t, err)
			ids[i] = msg.Header.Get("Message-ID")
		}
		require.Equal(t, "<"+strings.ReplaceAll(id, "-", "")+"@brand.example>", ids[0])
		require.Equal(t, ids[0], ids[1], "a retry is recognisable as the same message")
		require.NotEqual(t, ids[0], ids[2])
	})

	overTLS := []struct {
		name   string
		server func() *fakeSMTP
		url    string
		auths  []authAttempt // nil: none
	}{
		{"STARTTLS before credentials", func() *fakeSMTP { return &fakeSMTP{tls: serverCfg, startTLS: true, auth: true} },
			"smtp://user:" + escapedPassword + "@mail.example:587", []authAttempt{{user: "user", pass: password, overTLS: true}}},
		{"STARTTLS when offered, even without credentials", func() *fakeSMTP { return &fakeSMTP{tls: serverCfg, startTLS: true} },
			"smtp://mail.example:25", nil},
		{"implicit TLS with smtps", func() *fakeSMTP { return &fakeSMTP{tls: serverCfg, implicit: true, auth: true} },
			"smtps://user:" + escapedPassword + "@mail.example", []authAttempt{{user: "user", pass: password, overTLS: true}}},
	}
	for _, tc := range overTLS {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.server().start(t)
			m := mailerFor(t, s, tc.url, trust)
			require.NoError(t, m.Send(ctx, Message{To: "ana@example.com", Subject: "Hi", Text: "Hello"}))
			_, auths, got := s.snapshot()
			if tc.auths == nil {
				require.Empty(t, auths)
			} else {
				require.Equal(t, tc.auths, auths)
			}
			require.Len(t, got, 1)
			require.True(t, got[0].overTLS)
			require.Equal(t, "no-reply@mail.example", got[0].from)
		})
	}

	t.Run("refuses to send credentials in clear to a remote server", func(t *testing.T) {
		t.Parallel()
		s := (&fakeSMTP{auth: true}).start(t)
		m := mailerFor(t, s, "smtp://user:"+escapedPassword+"@mail.example:587", trust)
		err := m.Send(ctx, Message{To: "ana@example.com", Subject: "Hi", Text: "Hello"})
		require.ErrorContains(t, err, "STARTTLS")
		require.NotContains(t, err.Error(), "s3cret")
		s.requireNothingSent(t)
	})

	t.Run("credentials without TLS to a loopback server", func(t *testing.T) {
		t.Parallel()
		s := (&fakeSMTP{auth: true}).start(t)
		m := mailerFor(t, s, "smtp://user:"+escapedPassword+"@127.0.0.1:1025", nil)
		require.NoError(t, m.Send(ctx, Message{To: "ana@example.com", Subject: "Hi", Text: "Hello"}))
		_, auths, _ := s.snapshot()
		require.Equal(t, []authAttempt{{user: "user", pass: password}}, auths)
	})

	t.Run("an untrusted certificate stops the session", func(t *testing.T) {
		t.Parallel()
		s := (&fakeSMTP{tls: serverCfg, startTLS: true, auth: true}).start(t)
		m := mailerFor(t, s, "smtp://user:"+escapedPassword+"@mail.example:587", nil) // system roots only
		err := m.Send(ctx, Message{To: "ana@example.com", Subject: "Hi", Text: "Hello"})
		require.ErrorContains(t, err, "STARTTLS")
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
		s.requireNothingSent(t)
	})

	t.Run("a rejected recipient's error does not quote the address", func(t *testing.T) {
		t.Parallel()
		s := (&fakeSMTP{rejectRcpt: true}).start(t)
		m := mailerFor(t, s, "smtp://localhost:25", nil)
		err := m.Send(ctx, Message{To: "ana@example.com", Subject: "Hi", Text: "Hello"})
		var reply *textproto.Error
		require.ErrorAs(t, err, &reply)
		require.Equal(t, 550, reply.Code)
		require.NotContains(t, strings.ToLower(err.Error()), "ana@example.com")
		require.Contains(t, err.Error(), "RCPT TO")
	})

	t.Run("refuses header injection before connecting", func(t *testing.T) {
		t.Parallel()
		s := (&fakeSMTP{}).start(t)
		m := mailerFor(t, s, "smtp://localhost:25", nil)
		for _, msg := range []Message{
			{To: "ana@example.com\r\nBcc: eve@example.com", Subject: "Hi", Text: "Hello"},
			{To: "ana@example.com\nBcc: eve@example.com", Subject: "Hi", Text: "Hello"},
			{To: "ana@example.com", Subject: "Hi\r\nBcc: eve@example.com", Text: "Hello"},
			{To: "ana@example.com", Subject: "Hi\rBcc: eve@example.com", Text: "Hello"},
			{To: "not an address", Subject: "Hi", Text: "Hello"},
		} {
			err := m.Send(ctx, msg)
			require.Error(t, err, "%q", msg)
			require.NotContains(t, err.Error(), "eve@")
		}
		conns, _, _ := s.snapshot()
		require.Zero(t, conns)
	})

	// A server that never answers: the send gives up at the first bound it meets.
	for _, tc := range []struct {
		name  string
		bound func(ctx context.Context, m *SMTPMailer) (context.Context, context.CancelFunc)
		want  error
	}{
		{"gives up when the context ends", func(ctx context.Context, _ *SMTPMailer) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 100*time.Millisecond)
		}, context.DeadlineExceeded},
		{"gives up when a command times out", func(ctx context.Context, m *SMTPMailer) (context.Context, context.CancelFunc) {
			m.timeout = 100 * time.Millisecond
			return ctx, func() {}
		}, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := (&fakeSMTP{silent: true}).start(t)
			m := mailerFor(t, s, "smtp://localhost:25", nil)
			ctx, cancel := tc.bound(ctx, m)
			defer cancel()
			start := time.Now()
			err := m.Send(ctx, Message{To: "ana@example.com", Subject: "Hi", Text: "Hello"})
			require.ErrorIs(t, err, tc.want)
			require.Less(t, time.Since(start), 5*time.Second)
		})
	}

	t.Run("printing the mailer hides the password", func(t *testing.T) {
		t.Parallel()
		m, err := NewSMTP("smtp://user:" + escapedPassword + "@mail.example:587")
		require.NoError(t, err)
		for _, format := range []string{"%v", "%+v", "%s"} {
			require.NotContains(t, fmt.Sprintf(format, m), "s3cret")
		}
		require.Equal(t, "smtp://mail.example:587", m.String())
	})
}

func TestNewSMTP(t *testing.T) {
	t.Parallel()

	t.Run("valid URLs", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			url, addr, user, pass, from, fromName string
			implicitTLS                           bool
		}{
			{url: "smtp://user:pa%40ss@mail.example:2525?from=Scoville%20%3Cbox@brand.example%3E",
				addr: "mail.example:2525", user: "user", pass: "pa@ss", from: "box@brand.example", fromName: "Scoville"},
			{url: "smtp://mail.example", addr: "mail.example:587", from: "no-reply@mail.example"},
			{url: "smtps://u:p@mail.example/", addr: "mail.example:465", user: "u", pass: "p", from: "no-reply@mail.example", implicitTLS: true},
			{url: "smtp://127.0.0.1:1025?from=dev@scoville.test", addr: "127.0.0.1:1025", from: "dev@scoville.test"},
		} {
			m, err := NewSMTP(tc.url)
			require.NoError(t, err, tc.url)
			require.Equal(t, tc.addr, m.addr, tc.url)
			require.Equal(t, tc.user, m.user, tc.url)
			require.Equal(t, tc.pass, m.pass, tc.url)
			require.Equal(t, tc.from, m.from.Address, tc.url)
			require.Equal(t, tc.fromName, m.from.Name, tc.url)
			require.Equal(t, tc.implicitTLS, m.implicitTLS, tc.url)
		}
	})

	t.Run("invalid URLs say why and never repeat the password", func(t *testing.T) {
		t.Parallel()
		const pw = "s3cret-pw"
		for _, tc := range []struct{ url, want string }{
			{"", "scheme"},
			{"http://u:" + pw + "@mail.example:25", "scheme"},
			{"mail.example:25", "scheme"},
			{"smtp://u:" + pw + "@:25", "no host"},
			{"smtp:///?from=a@b.example", "no host"},
			{"smtp:u:" + pw + "@mail.example", "no host"},
			{"smtp://u:" + pw + "@mail.example:0", "port"},
			{"smtp://u:" + pw + "@mail.example:70000", "port"},
			{"smtp://u:" + pw + "@mail.example:abc", "not a valid URL"},
			{"smtp://u:" + pw + "@ma il.example:25", "not a valid URL"},
			{"smtp://u:" + pw + "@mail.example:25/inbox", "path"},
			{"smtp://:" + pw + "@mail.example:25", "no user"},
			{"smtp://u:" + pw + "@mail.example:25?from=not-an-address", "sender"},
			{"smtp://u:" + pw + "@mail.example:25?from=a@b.example%0D%0ABcc:%20eve@c.example", "sender"},
			{"smtp://u:" + pw + "@mail.example:25?form=a@b.example", "unknown parameter"},
			{"smtp://u:" + pw + "@mail.example:25?from=%zz", "query"},
		} {
			_, err := NewSMTP(tc.url)
			require.ErrorContains(t, err, tc.want, tc.url)
			require.NotContains(t, err.Error(), pw, tc.url)
		}
	})
}
