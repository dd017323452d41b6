package config

import (
	"errors"
	"net"
	"os"
	"strings"
)

// DevIDP is the configuration of `scoville devidp`, the development OpenID Connect
// issuer. LoadDevIDP builds it; it is read-only afterwards.
type DevIDP struct {
	// Addr is DEVIDP_ADDR, a loopback IP and port, default 127.0.0.1:9096. The
	// issuer is http://Addr, so only this machine can reach it.
	Addr string
	// Audience is OIDC_AUDIENCE, the aud of the tokens it mints (the server checks
	// the same variable), default "scoville-api"; no whitespace.
	Audience string
	// RedirectURIs is DEVIDP_REDIRECT_URIS, a comma list (entries trimmed) of the
	// exact URIs the Playground client may return to; default the Playground on
	// 127.0.0.1:8080 and localhost:8080. devidp.Issuer.RegisterClient checks them.
	RedirectURIs []string
}

// DevIDPDefaultAddr is where the development issuer listens when DEVIDP_ADDR is unset.
const DevIDPDefaultAddr = "127.0.0.1:9096"

// ErrDevIDPNotDevelopment is LoadDevIDP's refusal when APP_ENV is set to anything
// but development: the development issuer can never stand in for a real one.
var ErrDevIDPNotDevelopment = errors.New("APP_ENV: the development identity provider only runs with APP_ENV=development")

// LoadDevIDP reads the devidp subcommand's variables through getenv (os.Getenv when
// nil), trimmed like Load's. It refuses with ErrDevIDPNotDevelopment unless APP_ENV
// is unset or development, and otherwise returns every problem joined, each naming
// its variable and none quoting a value.
func LoadDevIDP(getenv func(string) string) (*DevIDP, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	l := &loader{getenv: getenv}
	if env := l.get("APP_ENV"); env != "" && env != string(Development) {
		return nil, ErrDevIDPNotDevelopment
	}
	c := &DevIDP{
		Addr:         DevIDPDefaultAddr,
		Audience:     "scoville-api",
		RedirectURIs: []string{"http://127.0.0.1:8080/playground", "http://localhost:8080/playground"},
	}
	if v := l.get("DEVIDP_ADDR"); v != "" {
		host, port, err := net.SplitHostPort(v)
		ip := net.ParseIP(host)
		_, portOK := parsePort(port, 0)
		if err != nil || ip == nil || !ip.IsLoopback() || !portOK {
			l.failf("DEVIDP_ADDR", "must be a loopback IP and a port from 0 to 65535, such as 127.0.0.1:9096")
		}
		c.Addr = v
	}
	if v := l.get("OIDC_AUDIENCE"); v != "" {
		if strings.ContainsFunc(v, isSpace) {
			l.failf("OIDC_AUDIENCE", "must not contain whitespace")
		}
		c.Audience = v
	}
	if v := l.get("DEVIDP_REDIRECT_URIS"); v != "" {
		c.RedirectURIs = strings.Split(v, ",")
		for k := range c.RedirectURIs {
			c.RedirectURIs[k] = strings.TrimSpace(c.RedirectURIs[k])
		}
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return c, nil
}

// Keys is the configuration of `scoville keys rotate`, which needs only the current
// key set (`keys reencrypt` and `keys status` open the database and use Load).
type Keys struct {
	// DataEncryptionKeys is DATA_ENCRYPTION_KEYS, checked as Load checks it outside
	// production (a well-formed key set); empty when unset, and rotate then reads
	// the value from stdin.
	DataEncryptionKeys Secret
}

// LoadKeys reads DATA_ENCRYPTION_KEYS through getenv (os.Getenv when nil), trimmed.
// A malformed value is an error that names the variable and never quotes it.
func LoadKeys(getenv func(string) string) (*Keys, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	l := &loader{getenv: getenv}
	c := &Keys{DataEncryptionKeys: l.dataEncryptionKeys("DATA_ENCRYPTION_KEYS")}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return c, nil
}

// WebhookLoad is what cmd/webhookload, the webhook load generator, reads from the
// environment: the running server's settings it needs, each the default of a flag.
type WebhookLoad struct {
	// StripeWebhookSecret is STRIPE_WEBHOOK_SECRET (whsec_...), the default of
	// -secret.
	StripeWebhookSecret Secret
	// DatabaseURL is DATABASE_URL, checked as Load checks it, the default of
	// -database-url.
	DatabaseURL Secret
	// DataEncryptionKeys is DATA_ENCRYPTION_KEYS, the server's key set, checked as
	// Load checks it outside production; empty means the development set.
	DataEncryptionKeys Secret
}

// LoadWebhookLoad reads cmd/webhookload's variables through getenv (os.Getenv when
// nil), trimmed. Each is optional here; problems are joined, each naming its
// variable and none quoting a value.
func LoadWebhookLoad(getenv func(string) string) (*WebhookLoad, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	l := &loader{getenv: getenv}
	c := &WebhookLoad{
		StripeWebhookSecret: l.prefixedSecret("STRIPE_WEBHOOK_SECRET", "whsec_"),
		DatabaseURL:         l.databaseURL("DATABASE_URL", false),
		DataEncryptionKeys:  l.dataEncryptionKeys("DATA_ENCRYPTION_KEYS"),
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return c, nil
}

// BenchTools is the environment of the benchmark helpers (cmd/webhooksink and the
// profiling build of the server); LoadBenchTools builds it.
type BenchTools struct {
	// SinkSecret is WEBHOOKSINK_SECRET (whsec_...), the outgoing webhook secret the
	// sink verifies signatures with; empty: the sink does not verify.
	SinkSecret Secret
	// PprofAddr is SCOVILLE_PPROF_ADDR, a loopback IP and port for Go's profiles in
	// a build with -tags benchpprof; empty: no profiles are served.
	PprofAddr string
}

// LoadBenchTools reads the benchmark helpers' variables through getenv (os.Getenv
// when nil); problems are joined, each naming its variable and none quoting a value.
func LoadBenchTools(getenv func(string) string) (*BenchTools, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	l := &loader{getenv: getenv}
	t := &BenchTools{PprofAddr: l.get("SCOVILLE_PPROF_ADDR")}
	if l.get("WEBHOOKSINK_SECRET") != "" {
		t.SinkSecret = l.prefixedSecret("WEBHOOKSINK_SECRET", "whsec_")
	}
	if t.PprofAddr != "" {
		host, _, err := net.SplitHostPort(t.PprofAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			l.failf("SCOVILLE_PPROF_ADDR", "must be a loopback IP address with a port")
		}
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return t, nil
}
