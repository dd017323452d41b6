package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/sealing"
)

// env is a map-backed getenv, so tests never touch the process environment.
type env map[string]string

func (e env) get(name string) string { return e[name] }

// with returns a copy of e with overrides applied; an override of "" unsets.
func (e env) with(overrides env) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for k, v := range overrides {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// Distinctive secret values: if any of them shows up in printed or logged output,
// a secret leaked.
const (
	canaryDBPassword = "CANARYdbPW7f3a"
	canaryStripeKey  = "sk_live_CANARYstripe9x"
	canaryWebhook    = "whsec_CANARYwebhook4q"
	canarySMTPPass   = "CANARYsmtpPW2b"
)

// canaryDEK is a real DATA_ENCRYPTION_KEYS value (it is parsed at load), so it cannot
// spell CANARY; it is a canary all the same.
var canaryDEK = func() string {
	v, err := sealing.Generate()
	if err != nil {
		panic(err)
	}
	return v
}()

var canaries = []string{"CANARY", canaryDBPassword, canaryStripeKey, canaryWebhook, canarySMTPPass, canaryDEK}

func devEnv() env {
	return env{"DATABASE_URL": "postgres://app:pw@localhost:5432/scoville?sslmode=disable"}
}

func prodEnv() env {
	return env{
		"APP_ENV":                "production",
		"DATABASE_URL":           "postgres://app:" + canaryDBPassword + "@db.internal:5432/scoville?sslmode=verify-full",
		"DATABASE_MIGRATION_URL": "postgres://owner:" + canaryDBPassword + "@db.internal:5432/scoville?sslmode=verify-full",
		"OIDC_ISSUER_URL":        "https://id.example.com/realms/scoville",
		"OIDC_AUDIENCE":          "scoville-api",
		"STRIPE_SECRET_KEY":      canaryStripeKey,
		"STRIPE_WEBHOOK_SECRET":  canaryWebhook,
		"SMTP_URL":               "smtps://mailer:" + canarySMTPPass + "@mail.example.com:465",
		"DATA_ENCRYPTION_KEYS":   canaryDEK,
	}
}

// problems splits a Load error into its joined parts.
func problems(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func requireNoCanary(t *testing.T, s string) {
	t.Helper()
	for _, c := range canaries {
		require.NotContains(t, s, c)
	}
}

func TestLoadDefaultsInDevelopment(t *testing.T) {
	t.Parallel()

	cfg, err := Load(devEnv().get)
	require.NoError(t, err)

	require.Equal(t, Development, cfg.Env)
	require.False(t, cfg.IsProduction())
	require.Equal(t, ":8080", cfg.HTTPAddr)
	require.Equal(t, "postgres://app:pw@localhost:5432/scoville?sslmode=disable", cfg.DatabaseURL.Reveal())
	require.Equal(t, 20, cfg.DBMaxOpenConns)
	require.Equal(t, 20, cfg.DBMaxIdleConns)
	require.Equal(t, 10, cfg.WebhookWorkers)
	require.Equal(t, 20, cfg.JobWorkers)
	require.Equal(t, 30*time.Minute, cfg.DBConnMaxLifetime)
	require.Equal(t, 5*time.Minute, cfg.DBConnMaxIdleTime)
	require.Empty(t, cfg.OIDCIssuerURL)
	require.Empty(t, cfg.OIDCAudience)
	require.Equal(t, "roles", cfg.OIDCRolesClaim)
	require.Equal(t, 5*time.Minute, cfg.StepUpMaxAge)
	require.Empty(t, cfg.StripeSecretKey)
	require.Empty(t, cfg.StripeWebhookSecret)
	require.Empty(t, cfg.StripeAPIBase)
	require.Empty(t, cfg.AllowedRedirectOrigins)
	require.Empty(t, cfg.CORSAllowedOrigins)
	require.Empty(t, cfg.MetricsAddr)
	require.Empty(t, cfg.TrustedProxies)
	require.Empty(t, cfg.SMTPURL)
	require.Empty(t, cfg.PlaygroundOIDCClientID)
	require.Empty(t, cfg.DataEncryptionKeys)
	require.True(t, cfg.MigrateOnStart)
	require.Equal(t, slog.LevelInfo, cfg.LogLevel)
	require.Equal(t, 20*time.Second, cfg.ShutdownTimeout)
}

func TestLoadProduction(t *testing.T) {
	t.Parallel()

	cfg, err := Load(prodEnv().with(env{
		"STRIPE_API_BASE":           " https://stripe.internal:8443/ ",
		"PLAYGROUND_OIDC_CLIENT_ID": "scoville-playground",
		"OIDC_ROLES_CLAIM":          "realm_access.roles",
		"DB_MAX_OPEN_CONNS":         "50",
		"DB_MAX_IDLE_CONNS":         "25",
		"DB_CONN_MAX_LIFETIME":      "1h",
		"DB_CONN_MAX_IDLE_TIME":     "90s",
		"STEP_UP_MAX_AGE":           "15m",
		"SHUTDOWN_TIMEOUT":          "45s",
		"LOG_LEVEL":                 "WARN",
		"METRICS_ADDR":              "127.0.0.1:9090",
		"HTTP_ADDR":                 "0.0.0.0:8443",
	}).get)
	require.NoError(t, err)

	require.Equal(t, Production, cfg.Env)
	require.True(t, cfg.IsProduction())
	require.Equal(t, "0.0.0.0:8443", cfg.HTTPAddr)
	require.Equal(t, "127.0.0.1:9090", cfg.MetricsAddr)
	require.Equal(t, "https://id.example.com/realms/scoville", cfg.OIDCIssuerURL)
	require.Equal(t, "scoville-api", cfg.OIDCAudience)
	require.Equal(t, "realm_access.roles", cfg.OIDCRolesClaim)
	require.Equal(t, canaryStripeKey, cfg.StripeSecretKey.Reveal())
	require.Equal(t, canaryWebhook, cfg.StripeWebhookSecret.Reveal())
	require.Equal(t, "https://stripe.internal:8443", cfg.StripeAPIBase, "trimmed, without trailing slash")
	require.Equal(t, "scoville-playground", cfg.PlaygroundOIDCClientID)
	require.Equal(t, canaryDEK, cfg.DataEncryptionKeys.Reveal())
	require.Equal(t, 50, cfg.DBMaxOpenConns)
	require.Equal(t, 25, cfg.DBMaxIdleConns)
	require.Equal(t, time.Hour, cfg.DBConnMaxLifetime)
	require.Equal(t, 90*time.Second, cfg.DBConnMaxIdleTime)
	require.Equal(t, 15*time.Minute, cfg.StepUpMaxAge)
	require.Equal(t, 45*time.Second, cfg.ShutdownTimeout)
	require.Equal(t, slog.LevelWarn, cfg.LogLevel)
	require.False(t, cfg.MigrateOnStart)
}

func TestLoadProductionRequiresEachVariable(t *testing.T) {
	t.Parallel()

	for _, name := range []string{"DATABASE_URL", "OIDC_ISSUER_URL", "OIDC_AUDIENCE", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"} {
		for _, blank := range []string{"", " \t "} {
			t.Run(fmt.Sprintf("%s=%q", name, blank), func(t *testing.T) {
				t.Parallel()

				e := prodEnv()
				if blank == "" {
					delete(e, name)
				} else {
					e[name] = blank
				}
				cfg, err := Load(e.get)
				require.Nil(t, cfg)
				got := problems(t, err)
				require.Len(t, got, 1, "only the missing variable is a problem: %q", got)
				want := name + " is required in production"
				if name == "DATABASE_URL" {
					want = "DATABASE_URL is required"
				}
				require.Equal(t, want, got[0])
			})
		}
	}
}

func TestLoadDatabaseURLRequiredInDevelopment(t *testing.T) {
	t.Parallel()

	cfg, err := Load(env{}.get)
	require.Nil(t, cfg)
	require.Equal(t, []string{"DATABASE_URL is required"}, problems(t, err))
}

func TestLoadRefusesMalformedValues(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		prod    bool
		set     env
		wantVar string // the variable the single problem must name
	}{
		{"APP_ENV unknown", true, env{"APP_ENV": "staging"}, "APP_ENV"},
		{"APP_ENV wrong case", true, env{"APP_ENV": "Production"}, "APP_ENV"},
		{"HTTP_ADDR without colon", false, env{"HTTP_ADDR": "8080"}, "HTTP_ADDR"},
		{"HTTP_ADDR named port", false, env{"HTTP_ADDR": ":http"}, "HTTP_ADDR"},
		{"HTTP_ADDR port too big", false, env{"HTTP_ADDR": ":70000"}, "HTTP_ADDR"},
		{"HTTP_ADDR bad host", false, env{"HTTP_ADDR": "bad host:80"}, "HTTP_ADDR"},
		{"HTTP_ADDR unbracketed IPv6", false, env{"HTTP_ADDR": "::1:8080"}, "HTTP_ADDR"},
		{"DATABASE_URL other scheme", false, env{"DATABASE_URL": "mysql://u:p@h/db"}, "DATABASE_URL"},
		{"DATABASE_URL plain word", false, env{"DATABASE_URL": "scoville"}, "DATABASE_URL"},
		{"DATABASE_URL bad escape", false, env{"DATABASE_URL": "postgres://u:p%zz@h/db"}, "DATABASE_URL"},
		{"DATABASE_URL dsn without value", false, env{"DATABASE_URL": "host=db port"}, "DATABASE_URL"},
		{"DATABASE_URL dsn unterminated quote", false, env{"DATABASE_URL": "host=db password='abc"}, "DATABASE_URL"},
		{"DATABASE_URL dsn starts with =", false, env{"DATABASE_URL": "=db"}, "DATABASE_URL"},
		{"DATABASE_MIGRATION_URL other scheme", false, env{"DATABASE_MIGRATION_URL": "mysql://u:p@h/db"}, "DATABASE_MIGRATION_URL"},
		{"DATABASE_MIGRATION_URL plain word", true, env{"DATABASE_MIGRATION_URL": "owner"}, "DATABASE_MIGRATION_URL"},
		{"RECONCILE_INTERVAL under a minute in production", true, env{"RECONCILE_INTERVAL": "30s"}, "RECONCILE_INTERVAL"},
		{"RECONCILE_INTERVAL under a second", false, env{"RECONCILE_INTERVAL": "500ms"}, "RECONCILE_INTERVAL"},
		{"DB_MAX_OPEN_CONNS zero", false, env{"DB_MAX_OPEN_CONNS": "0"}, "DB_MAX_OPEN_CONNS"},
		{"DB_MAX_OPEN_CONNS too many", false, env{"DB_MAX_OPEN_CONNS": "1001"}, "DB_MAX_OPEN_CONNS"},
		{"DB_MAX_OPEN_CONNS word", false, env{"DB_MAX_OPEN_CONNS": "many"}, "DB_MAX_OPEN_CONNS"},
		{"DB_MAX_IDLE_CONNS negative", false, env{"DB_MAX_IDLE_CONNS": "-1"}, "DB_MAX_IDLE_CONNS"},
		{"DB_MAX_IDLE_CONNS word", false, env{"DB_MAX_IDLE_CONNS": "x"}, "DB_MAX_IDLE_CONNS"},
		{"DB_MAX_IDLE_CONNS above open", false, env{"DB_MAX_IDLE_CONNS": "30"}, "DB_MAX_IDLE_CONNS"},
		{"DB_CONN_MAX_LIFETIME no unit", false, env{"DB_CONN_MAX_LIFETIME": "30"}, "DB_CONN_MAX_LIFETIME"},
		{"DB_CONN_MAX_LIFETIME zero", false, env{"DB_CONN_MAX_LIFETIME": "0s"}, "DB_CONN_MAX_LIFETIME"},
		{"DB_CONN_MAX_IDLE_TIME negative", false, env{"DB_CONN_MAX_IDLE_TIME": "-5m"}, "DB_CONN_MAX_IDLE_TIME"},
		{"OIDC_ISSUER_URL no scheme", false, env{"OIDC_ISSUER_URL": "id.example.com", "OIDC_AUDIENCE": "a"}, "OIDC_ISSUER_URL"},
		{"OIDC_ISSUER_URL ftp", false, env{"OIDC_ISSUER_URL": "ftp://id.example.com", "OIDC_AUDIENCE": "a"}, "OIDC_ISSUER_URL"},
		{"OIDC_ISSUER_URL query", false, env{"OIDC_ISSUER_URL": "https://id.example.com/?x=1", "OIDC_AUDIENCE": "a"}, "OIDC_ISSUER_URL"},
		{"OIDC_ISSUER_URL fragment", false, env{"OIDC_ISSUER_URL": "https://id.example.com/#f", "OIDC_AUDIENCE": "a"}, "OIDC_ISSUER_URL"},
		{"OIDC_ISSUER_URL userinfo", false, env{"OIDC_ISSUER_URL": "https://u:p@id.example.com", "OIDC_AUDIENCE": "a"}, "OIDC_ISSUER_URL"},
		{"OIDC_ISSUER_URL http in production", true, env{"OIDC_ISSUER_URL": "http://id.example.com"}, "OIDC_ISSUER_URL"},
		{"OIDC_AUDIENCE missing with issuer", false, env{"OIDC_ISSUER_URL": "http://localhost:8081/realms/dev"}, "OIDC_AUDIENCE"},
		{"OIDC_AUDIENCE with whitespace", true, env{"OIDC_AUDIENCE": "a b"}, "OIDC_AUDIENCE"},
		{"OIDC_ROLES_CLAIM empty segment", false, env{"OIDC_ROLES_CLAIM": "realm_access..roles"}, "OIDC_ROLES_CLAIM"},
		{"OIDC_ROLES_CLAIM leading dot", false, env{"OIDC_ROLES_CLAIM": ".roles"}, "OIDC_ROLES_CLAIM"},
		{"OIDC_ROLES_CLAIM space", false, env{"OIDC_ROLES_CLAIM": "my roles"}, "OIDC_ROLES_CLAIM"},
		{"STEP_UP_MAX_AGE no unit", false, env{"STEP_UP_MAX_AGE": "5"}, "STEP_UP_MAX_AGE"},
		{"STEP_UP_MAX_AGE zero", false, env{"STEP_UP_MAX_AGE": "0"}, "STEP_UP_MAX_AGE"},
		{"STEP_UP_MAX_AGE over a day", false, env{"STEP_UP_MAX_AGE": "24h1s"}, "STEP_UP_MAX_AGE"},
		{"STEP_UP_ACR empty entry", false, env{"STEP_UP_ACR": "gold,,silver"}, "STEP_UP_ACR"},
		{"STEP_UP_ACR trailing comma", false, env{"STEP_UP_ACR": "gold,"}, "STEP_UP_ACR"},
		{"STEP_UP_ACR inner space", false, env{"STEP_UP_ACR": "multi factor"}, "STEP_UP_ACR"},
		{"STEP_UP_ACR quote", false, env{"STEP_UP_ACR": `gold"`}, "STEP_UP_ACR"},
		{"STEP_UP_ACR backslash", false, env{"STEP_UP_ACR": `gold\`}, "STEP_UP_ACR"},
		{"STEP_UP_ACR non-ASCII", false, env{"STEP_UP_ACR": "göld"}, "STEP_UP_ACR"},
		{"STEP_UP_ACR too long", false, env{"STEP_UP_ACR": strings.Repeat("a", 256)}, "STEP_UP_ACR"},
		{"STEP_UP_ACR too many", false, env{"STEP_UP_ACR": "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u"}, "STEP_UP_ACR"},
		{"STEP_UP_AMR only a comma", false, env{"STEP_UP_AMR": ","}, "STEP_UP_AMR"},
		{"STEP_UP_AMR tab inside", false, env{"STEP_UP_AMR": "mfa\totp"}, "STEP_UP_AMR"},
		{"OIDC_REQUIRE_AT_JWT word", false, env{"OIDC_REQUIRE_AT_JWT": "yes"}, "OIDC_REQUIRE_AT_JWT"},
		{"STRIPE_SECRET_KEY publishable", false, env{"STRIPE_SECRET_KEY": "pk_test_abc"}, "STRIPE_SECRET_KEY"},
		{"STRIPE_SECRET_KEY prefix only", false, env{"STRIPE_SECRET_KEY": "sk_"}, "STRIPE_SECRET_KEY"},
		{"STRIPE_SECRET_KEY other", false, env{"STRIPE_SECRET_KEY": "abc"}, "STRIPE_SECRET_KEY"},
		{"STRIPE_SECRET_KEY inner space", false, env{"STRIPE_SECRET_KEY": "sk_test_a b"}, "STRIPE_SECRET_KEY"},
		{"STRIPE_SECRET_KEY no mode in production", true, env{"STRIPE_SECRET_KEY": "sk_abc"}, "STRIPE_SECRET_KEY"},
		{"STRIPE_WEBHOOK_SECRET prefix only", false, env{"STRIPE_WEBHOOK_SECRET": "whsec_"}, "STRIPE_WEBHOOK_SECRET"},
		{"STRIPE_WEBHOOK_SECRET no prefix", false, env{"STRIPE_WEBHOOK_SECRET": "secret"}, "STRIPE_WEBHOOK_SECRET"},
		{"STRIPE_API_BASE no scheme", false, env{"STRIPE_API_BASE": "localhost:12111"}, "STRIPE_API_BASE"},
		{"STRIPE_API_BASE ftp", false, env{"STRIPE_API_BASE": "ftp://stripe-mock"}, "STRIPE_API_BASE"},
		{"STRIPE_API_BASE http in production", true, env{"STRIPE_API_BASE": "http://stripe-mock:12111"}, "STRIPE_API_BASE"},
		{"ALLOWED_REDIRECT_ORIGINS star", false, env{"ALLOWED_REDIRECT_ORIGINS": "*"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS path", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://shop.example.com/checkout"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS query", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://shop.example.com?x=1"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS no scheme", false, env{"ALLOWED_REDIRECT_ORIGINS": "shop.example.com"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS userinfo", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://u@shop.example.com"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS wildcard host", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://*.example.com"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS unicode host", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://bücher.example"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS bad port", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://shop.example.com:0"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS javascript", false, env{"ALLOWED_REDIRECT_ORIGINS": "javascript://shop.example.com"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS second entry bad", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://a.example.com,null"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"ALLOWED_REDIRECT_ORIGINS http in production", true, env{"ALLOWED_REDIRECT_ORIGINS": "http://shop.example.com"}, "ALLOWED_REDIRECT_ORIGINS"},
		{"CORS_ALLOWED_ORIGINS star in production", true, env{"CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS"},
		{"CORS_ALLOWED_ORIGINS http in production", true, env{"CORS_ALLOWED_ORIGINS": "http://app.example.com"}, "CORS_ALLOWED_ORIGINS"},
		{"CORS_ALLOWED_ORIGINS path", false, env{"CORS_ALLOWED_ORIGINS": "http://localhost:3000/app"}, "CORS_ALLOWED_ORIGINS"},
		{"METRICS_ADDR no port", false, env{"METRICS_ADDR": "9090"}, "METRICS_ADDR"},
		{"METRICS_ADDR same as HTTP_ADDR", false, env{"METRICS_ADDR": "127.0.0.1:8080"}, "METRICS_ADDR"},
		{"TRUSTED_PROXIES prefix too long", false, env{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{"TRUSTED_PROXIES not an IP", false, env{"TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}, "TRUSTED_PROXIES"},
		{"TRUSTED_PROXIES host bits", false, env{"TRUSTED_PROXIES": "10.0.0.1/8"}, "TRUSTED_PROXIES"},
		{"TRUSTED_PROXIES zone", false, env{"TRUSTED_PROXIES": "fe80::1%eth0"}, "TRUSTED_PROXIES"},
		{"SMTP_URL no port", false, env{"SMTP_URL": "smtp://mail.example.com"}, "SMTP_URL"},
		{"SMTP_URL http", false, env{"SMTP_URL": "http://mail.example.com:25"}, "SMTP_URL"},
		{"SHIPPING_COUNTRIES not a code", false, env{"SHIPPING_COUNTRIES": "US,USA"}, "SHIPPING_COUNTRIES"},
		{"SHIPPING_COUNTRIES Checkout cannot ship there", false, env{"SHIPPING_COUNTRIES": "US,KP"}, "SHIPPING_COUNTRIES"},
		{"WEBHOOK_WORKERS zero", false, env{"WEBHOOK_WORKERS": "0"}, "WEBHOOK_WORKERS"},
		{"JOB_POLL_INTERVAL too long", false, env{"JOB_POLL_INTERVAL": "1m"}, "JOB_POLL_INTERVAL"},
		{"SMTP_URL no host", false, env{"SMTP_URL": "smtp://:25"}, "SMTP_URL"},
		{"SMTP_URL bad escape", false, env{"SMTP_URL": "smtp://u:p%zz@mail.example.com:25"}, "SMTP_URL"},
		{"MIGRATE_ON_START yes", false, env{"MIGRATE_ON_START": "yes"}, "MIGRATE_ON_START"},
		{"LOG_LEVEL verbose", false, env{"LOG_LEVEL": "verbose"}, "LOG_LEVEL"},
		{"SHUTDOWN_TIMEOUT no unit", false, env{"SHUTDOWN_TIMEOUT": "20"}, "SHUTDOWN_TIMEOUT"},
		{"SHUTDOWN_TIMEOUT zero", false, env{"SHUTDOWN_TIMEOUT": "0s"}, "SHUTDOWN_TIMEOUT"},
		{"DATA_ENCRYPTION_KEYS not a key set", false, env{"DATA_ENCRYPTION_KEYS": "bm90IGtleXM="}, "DATA_ENCRYPTION_KEYS"},
		{"DATA_ENCRYPTION_KEYS development set in production", true, env{"DATA_ENCRYPTION_KEYS": sealing.DevelopmentKeys}, "DATA_ENCRYPTION_KEYS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			base := devEnv()
			if tt.prod {
				base = prodEnv()
			}
			cfg, err := Load(base.with(tt.set).get)
			require.Nil(t, cfg)
			got := problems(t, err)
			// One problem, and it is this one: the rest of the base env is valid.
			require.Len(t, got, 1, "problems: %q", got)
			require.True(t, strings.HasPrefix(got[0], tt.wantVar), "%q should start with %s", got[0], tt.wantVar)
		})
	}
}

func TestLoadAcceptsValidForms(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		prod  bool
		set   env
		check func(t *testing.T, c *Config)
	}{
		{"RECONCILE_INTERVAL of seconds outside production", false, env{"RECONCILE_INTERVAL": "2s"}, func(t *testing.T, c *Config) {
			require.Equal(t, 2*time.Second, c.ReconcileInterval)
		}},
		{"postgresql scheme", false, env{"DATABASE_URL": "postgresql:///scoville?host=/var/run/postgresql"}, func(t *testing.T, c *Config) {
			require.Equal(t, "postgresql:///scoville?host=/var/run/postgresql", c.DatabaseURL.Reveal())
		}},
		{"multi-host URL", false, env{"DATABASE_URL": "postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write"}, func(t *testing.T, c *Config) {
			require.Contains(t, c.DatabaseURL.Reveal(), "h1:5432,h2:5432")
		}},
		{"key=value dsn", false, env{"DATABASE_URL": "host=db port=5432 user=app password='a b\\'c' dbname = scoville"}, func(t *testing.T, c *Config) {
			require.Contains(t, c.DatabaseURL.Reveal(), "dbname = scoville")
		}},
		{"trimmed values", false, env{"DATABASE_URL": "  postgres://h/db \n", "HTTP_ADDR": " 127.0.0.1:9000 "}, func(t *testing.T, c *Config) {
			require.Equal(t, "postgres://h/db", c.DatabaseURL.Reveal())
			require.Equal(t, "127.0.0.1:9000", c.HTTPAddr)
		}},
		{"IPv6 listen address", false, env{"HTTP_ADDR": "[::1]:8080", "METRICS_ADDR": "[::1]:9090"}, func(t *testing.T, c *Config) {
			require.Equal(t, "[::1]:8080", c.HTTPAddr)
			require.Equal(t, "[::1]:9090", c.MetricsAddr)
		}},
		{"http issuer in development", false, env{"OIDC_ISSUER_URL": "http://localhost:8081/realms/dev", "OIDC_AUDIENCE": "scoville"}, func(t *testing.T, c *Config) {
			require.Equal(t, "http://localhost:8081/realms/dev", c.OIDCIssuerURL)
		}},
		{"issuer trailing slash kept", true, env{"OIDC_ISSUER_URL": "https://tenant.auth0.com/"}, func(t *testing.T, c *Config) {
			require.Equal(t, "https://tenant.auth0.com/", c.OIDCIssuerURL, "must equal the tokens' iss exactly")
		}},
		{"stripe-mock in development", false, env{"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_WEBHOOK_SECRET": "whsec_x", "STRIPE_API_BASE": "http://localhost:12111"}, func(t *testing.T, c *Config) {
			require.Equal(t, "sk_test_123", c.StripeSecretKey.Reveal())
			require.Equal(t, "http://localhost:12111", c.StripeAPIBase)
		}},
		{"restricted key in production", true, env{"STRIPE_SECRET_KEY": "rk_live_abc"}, func(t *testing.T, c *Config) {
			require.Equal(t, "rk_live_abc", c.StripeSecretKey.Reveal())
		}},
		{"plain sk_ in development", false, env{"STRIPE_SECRET_KEY": "sk_abc"}, func(t *testing.T, c *Config) {
			require.Equal(t, "sk_abc", c.StripeSecretKey.Reveal())
		}},
		{"CORS star in development", false, env{"CORS_ALLOWED_ORIGINS": "*"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"*"}, c.CORSAllowedOrigins)
		}},
		{"idle follows a small open limit", false, env{"DB_MAX_OPEN_CONNS": "4"}, func(t *testing.T, c *Config) {
			require.Equal(t, 4, c.DBMaxOpenConns)
			require.Equal(t, 4, c.DBMaxIdleConns)
		}},
		{"idle zero", false, env{"DB_MAX_IDLE_CONNS": "0"}, func(t *testing.T, c *Config) {
			require.Equal(t, 0, c.DBMaxIdleConns)
		}},
		{"step-up factors", false, env{"STEP_UP_ACR": " gold, urn:example:loa:3 ,gold", "STEP_UP_AMR": "mfa"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"gold", "urn:example:loa:3"}, c.StepUpACR)
			require.Equal(t, []string{"mfa"}, c.StepUpAMR)
		}},
		{"step-up acr URI with query-like characters", false, env{"STEP_UP_ACR": "http://schemas.openid.net/pape/policies/2007/06/multi-factor"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"http://schemas.openid.net/pape/policies/2007/06/multi-factor"}, c.StepUpACR)
			require.Nil(t, c.StepUpAMR)
		}},
		{"at+jwt required", false, env{"OIDC_REQUIRE_AT_JWT": "true"}, func(t *testing.T, c *Config) {
			require.True(t, c.OIDCRequireATJWT)
		}},
		{"step-up at the 24h limit", false, env{"STEP_UP_MAX_AGE": "24h"}, func(t *testing.T, c *Config) {
			require.Equal(t, 24*time.Hour, c.StepUpMaxAge)
		}},
		{"shipping countries", false, env{"SHIPPING_COUNTRIES": " us, ca ,US"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"US", "CA"}, c.ShippingCountries)
		}},
		{"shipping countries default", false, env{}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"US"}, c.ShippingCountries)
		}},
		{"smtp URL", false, env{"SMTP_URL": "smtp://user:pa%40ss@mail.example.com:587"}, func(t *testing.T, c *Config) {
			require.Equal(t, "smtp://user:pa%40ss@mail.example.com:587", c.SMTPURL.Reveal())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			base := devEnv()
			if tt.prod {
				base = prodEnv()
			}
			cfg, err := Load(base.with(tt.set).get)
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestLoadCollectsAllProblems(t *testing.T) {
	t.Parallel()

	cfg, err := Load(env{
		"APP_ENV":          "production",
		"HTTP_ADDR":        "nope",
		"STEP_UP_MAX_AGE":  "5",
		"TRUSTED_PROXIES":  "x",
		"MIGRATE_ON_START": "maybe",
	}.get)
	require.Nil(t, cfg)
	require.Equal(t, []string{
		"HTTP_ADDR: must be host:port, e.g. :8080 or 127.0.0.1:8080",
		"DATABASE_URL is required",
		"OIDC_ISSUER_URL is required in production",
		"OIDC_AUDIENCE is required in production",
		"STEP_UP_MAX_AGE: not a Go duration (e.g. 5m)",
		"STRIPE_SECRET_KEY is required in production",
		"STRIPE_WEBHOOK_SECRET is required in production",
		"TRUSTED_PROXIES: entry 1 is not an IP address or CIDR",
		"SMTP_URL is required in production",
		"DATA_ENCRYPTION_KEYS is required in production; print a value with `scoville keys generate`",
		"MIGRATE_ON_START: not a boolean (use true or false)",
	}, problems(t, err))
}

func TestLoadUnknownAppEnvChecksTheRestAsProduction(t *testing.T) {
	t.Parallel()

	_, err := Load(devEnv().with(env{"APP_ENV": "prod"}).get)
	got := strings.Join(problems(t, err), "\n")
	require.Contains(t, got, `APP_ENV: must be "development" or "production"`)
	require.Contains(t, got, "STRIPE_SECRET_KEY is required in production")
}

func TestLoadErrorsNeverContainSecrets(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		prod bool
		set  env
	}{
		{"DATABASE_URL other scheme", false, env{"DATABASE_URL": "mysql://u:CANARYa@h/db"}},
		{"DATABASE_URL unparsable URL", false, env{"DATABASE_URL": "postgres://u:CANARY%zz@h/db"}},
		{"DATABASE_URL bad dsn", false, env{"DATABASE_URL": "host=db password='CANARY"}},
		{"DATABASE_URL no equals", false, env{"DATABASE_URL": "CANARYdsn"}},
		{"STRIPE_SECRET_KEY publishable", false, env{"STRIPE_SECRET_KEY": "pk_live_CANARY"}},
		{"STRIPE_SECRET_KEY garbage", false, env{"STRIPE_SECRET_KEY": "CANARYkey"}},
		{"STRIPE_SECRET_KEY no mode in production", true, env{"STRIPE_SECRET_KEY": "sk_CANARY"}},
		{"STRIPE_SECRET_KEY whitespace", false, env{"STRIPE_SECRET_KEY": "sk_test_CANARY x"}},
		{"STRIPE_WEBHOOK_SECRET garbage", false, env{"STRIPE_WEBHOOK_SECRET": "CANARYwh"}},
		{"SMTP_URL no port", false, env{"SMTP_URL": "smtp://u:CANARY@mail.example.com"}},
		{"SMTP_URL unparsable", false, env{"SMTP_URL": "smtp://u:CANARY%zz@mail.example.com:25"}},
		{"SMTP_URL wrong scheme", false, env{"SMTP_URL": "https://u:CANARY@mail.example.com:25"}},
		{"non-secret URL with credentials", false, env{"OIDC_ISSUER_URL": "https://u:CANARY@id.example.com", "OIDC_AUDIENCE": "a"}},
		{"non-secret address", false, env{"HTTP_ADDR": "CANARY"}},
		{"origin", false, env{"ALLOWED_REDIRECT_ORIGINS": "https://CANARY.example.com/path"}},
		{"proxy", false, env{"TRUSTED_PROXIES": "CANARY"}},
		{"DATA_ENCRYPTION_KEYS garbage", false, env{"DATA_ENCRYPTION_KEYS": "CANARYdek"}},
		{"DATA_ENCRYPTION_KEYS base64 of garbage", true, env{"DATA_ENCRYPTION_KEYS": "Q0FOQVJZ"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			base := devEnv()
			if tt.prod {
				base = prodEnv()
			}
			_, err := Load(base.with(tt.set).get)
			require.Error(t, err)
			requireNoCanary(t, err.Error())
			requireNoCanary(t, fmt.Sprintf("%v %+v %#v", err, err, err))
		})
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	t.Parallel()

	cfg, err := Load(prodEnv().get)
	require.NoError(t, err)
	require.Contains(t, cfg.DatabaseURL.Reveal(), canaryDBPassword, "the canaries must really be in the config")
	require.Contains(t, cfg.SMTPURL.Reveal(), canarySMTPPass)

	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("config", "cfg", cfg, "value", *cfg)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("config", "cfg", cfg, "value", *cfg)
	marshalled, err := json.Marshal(cfg)
	require.NoError(t, err)

	outputs := map[string]string{
		"slog json":    jsonLog.String(),
		"slog text":    textLog.String(),
		"json.Marshal": string(marshalled),
	}
	// Verbs from a slice: vet rightly flags %s with a struct, but people write it.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs["fmt pointer "+verb] = fmt.Sprintf(verb, cfg)
		outputs["fmt value "+verb] = fmt.Sprintf(verb, *cfg)
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			requireNoCanary(t, out)
			require.Contains(t, out, redacted, "fields are printed, with secrets redacted")
		})
	}
}

func TestConfigLogValueSummarizes(t *testing.T) {
	t.Parallel()

	cfg, err := Load(prodEnv().with(env{"TRUSTED_PROXIES": "10.0.0.0/8"}).get)
	require.NoError(t, err)

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", cfg)
	var rec struct {
		Config map[string]any `json:"config"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))

	got := rec.Config
	require.Equal(t, "production", got["env"])
	require.Equal(t, true, got["database_url_set"])
	require.Equal(t, true, got["stripe_secret_key_set"])
	require.Equal(t, "live", got["stripe_mode"])
	require.Equal(t, true, got["stripe_webhook_secret_set"])
	require.Equal(t, true, got["smtp_url_set"])
	require.Equal(t, true, got["data_encryption_keys_set"])
	require.Equal(t, "https://id.example.com/realms/scoville", got["oidc_issuer_url"])
	require.Equal(t, []any{"10.0.0.0/8"}, got["trusted_proxies"])
	require.Equal(t, "INFO", got["log_level"])
	requireNoCanary(t, buf.String())

	var nilCfg *Config
	require.Equal(t, "<nil>", nilCfg.LogValue().String())
	require.False(t, nilCfg.IsProduction())
}

func TestLoadNormalizesOrigins(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lower-cases scheme and host", "HTTPS://Shop.Example.COM", []string{"https://shop.example.com"}},
		{"drops default https port", "https://shop.example.com:443", []string{"https://shop.example.com"}},
		{"drops default http port", "http://localhost:80", []string{"http://localhost"}},
		{"keeps other ports", "http://localhost:3000", []string{"http://localhost:3000"}},
		{"drops a lone slash", "https://shop.example.com/", []string{"https://shop.example.com"}},
		{"brackets IPv6", "http://[::1]:3000", []string{"http://[::1]:3000"}},
		{"lower-cases IPv6", "https://[2001:DB8::1]", []string{"https://[2001:db8::1]"}},
		{"trims entries, skips empty ones", " https://a.example.com , ,https://b.example.com,", []string{"https://a.example.com", "https://b.example.com"}},
		{"drops duplicates", "https://a.example.com,https://A.example.com:443", []string{"https://a.example.com"}},
		{"punycode host", "https://xn--bcher-kva.example", []string{"https://xn--bcher-kva.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			cfg, err := Load(devEnv().with(env{"ALLOWED_REDIRECT_ORIGINS": tt.in, "CORS_ALLOWED_ORIGINS": tt.in}).get)
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.AllowedRedirectOrigins)
			require.Equal(t, tt.want, cfg.CORSAllowedOrigins)
		})
	}
}

func TestLoadParsesTrustedProxies(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"IPv4 CIDR", "10.0.0.0/8", []string{"10.0.0.0/8"}},
		{"bare IPv4 is /32", "192.0.2.7", []string{"192.0.2.7/32"}},
		{"bare IPv6 is /128", "2001:db8::1", []string{"2001:db8::1/128"}},
		{"IPv6 CIDR", "2001:db8::/32", []string{"2001:db8::/32"}},
		{"IPv4-mapped bare IP is unmapped", "::ffff:192.0.2.7", []string{"192.0.2.7/32"}},
		{"list with spaces and trailing comma", " 10.0.0.0/8, 172.16.0.0/12 ,127.0.0.1,", []string{"10.0.0.0/8", "172.16.0.0/12", "127.0.0.1/32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			cfg, err := Load(devEnv().with(env{"TRUSTED_PROXIES": tt.in}).get)
			require.NoError(t, err)
			want := make([]netip.Prefix, len(tt.want))
			for i, s := range tt.want {
				want[i] = netip.MustParsePrefix(s)
			}
			require.Equal(t, want, cfg.TrustedProxies)
		})
	}
}

func TestLoadMigrateOnStart(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		prod  bool
		value string
		want  bool
	}{
		{"development default", false, "", true},
		{"production default", true, "", false},
		{"development off", false, "false", false},
		{"production on", true, "true", true},
		{"ParseBool short form", true, "1", true},
		{"ParseBool upper case", false, "FALSE", false},
		{"ParseBool letter", false, "f", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			base := devEnv()
			if tt.prod {
				base = prodEnv()
			}
			cfg, err := Load(base.with(env{"MIGRATE_ON_START": tt.value}).get)
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.MigrateOnStart)
		})
	}
}

func TestLoadLogLevel(t *testing.T) {
	t.Parallel()

	tests := map[string]slog.Level{
		"":        slog.LevelInfo,
		"debug":   slog.LevelDebug,
		"info":    slog.LevelInfo,
		"warn":    slog.LevelWarn,
		"warning": slog.LevelWarn,
		"ERROR":   slog.LevelError,
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			t.Parallel()

			cfg, err := Load(devEnv().with(env{"LOG_LEVEL": in}).get)
			require.NoError(t, err)
			require.Equal(t, want, cfg.LogLevel)
		})
	}
}

func TestSecretRedacts(t *testing.T) {
	t.Parallel()

	const value = "CANARY-secret-value"
	s := Secret(value)
	var empty Secret

	tests := []struct {
		name     string
		got      func(Secret) string
		want     string
		wantZero string
	}{
		{"String", Secret.String, redacted, ""},
		{"GoString", Secret.GoString, redacted, ""},
		{"%v", func(s Secret) string { return fmt.Sprintf("%v", s) }, redacted, ""},
		{"%+v", func(s Secret) string { return fmt.Sprintf("%+v", s) }, redacted, ""},
		{"%#v", func(s Secret) string { return fmt.Sprintf("%#v", s) }, redacted, ""},
		{"%s", func(s Secret) string { return fmt.Sprintf("%s", s) }, redacted, ""},
		{"%q", func(s Secret) string { return fmt.Sprintf("%q", s) }, `"` + redacted + `"`, `""`},
		{"%x", func(s Secret) string { return fmt.Sprintf("%x", s) }, redacted, ""},
		{"%d", func(s Secret) string { return fmt.Sprintf("%d", s) }, redacted, ""},
		{"pointer %v", func(s Secret) string { return fmt.Sprintf("%v", &s) }, redacted, ""},
		{"in a slice", func(s Secret) string { return fmt.Sprintf("%v", []Secret{s}) }, "[" + redacted + "]", "[]"},
		{"in a struct %+v", func(s Secret) string { return fmt.Sprintf("%+v", struct{ K Secret }{s}) }, "{K:" + redacted + "}", "{K:}"},
		{"MarshalJSON", func(s Secret) string { b, err := json.Marshal(s); require.NoError(t, err); return string(b) }, `"` + redacted + `"`, `""`},
		{"MarshalText", func(s Secret) string { b, err := s.MarshalText(); require.NoError(t, err); return string(b) }, redacted, ""},
		{"LogValue", func(s Secret) string { return s.LogValue().String() }, redacted, ""},
		{"slog JSON", func(s Secret) string {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})).Info("m", "k", s)
			return strings.TrimSpace(buf.String())
		}, `{"level":"INFO","msg":"m","k":"` + redacted + `"}`, `{"level":"INFO","msg":"m","k":""}`},
		{"error wrapping", func(s Secret) string { return fmt.Errorf("dial %v: %w", s, errors.New("refused")).Error() }, "dial " + redacted + ": refused", "dial : refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			require.Equal(t, tt.want, tt.got(s))
			require.Equal(t, tt.wantZero, tt.got(empty))
		})
	}

	require.Equal(t, value, s.Reveal())
	require.Empty(t, empty.Reveal())
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestStepUpDefaultsAndProductionWarning(t *testing.T) {
	t.Parallel()
	dev, err := Load(env{"DATABASE_URL": "postgres://h/db"}.get)
	require.NoError(t, err)
	require.Nil(t, dev.StepUpACR)
	require.Nil(t, dev.StepUpAMR)
	require.False(t, dev.OIDCRequireATJWT)
	require.Empty(t, dev.Warnings(), "development asks for no factor and says nothing")

	prod, err := Load(prodEnv().get)
	require.NoError(t, err)
	require.Nil(t, prod.StepUpACR, "production forces no factor: the values are the identity provider's")
	warnings := prod.Warnings()
	require.Len(t, warnings, 1)
	require.Contains(t, warnings[0], "STEP_UP_ACR")
	require.Contains(t, warnings[0], "STEP_UP_AMR")

	for _, set := range []env{{"STEP_UP_ACR": "gold"}, {"STEP_UP_AMR": "mfa"}} {
		c, err := Load(prodEnv().with(set).get)
		require.NoError(t, err)
		require.Empty(t, c.Warnings(), "%v", set)
	}
}

// WEBHOOK_TARGET_ALLOWED_CIDRS is parsed like TRUSTED_PROXIES; unset allows no
// non-public network.
func TestLoadParsesWebhookTargetAllowedCIDRs(t *testing.T) {
	t.Parallel()
	cfg, err := Load(prodEnv().get)
	require.NoError(t, err)
	require.Empty(t, cfg.WebhookTargetAllowedCIDRs)
	cfg, err = Load(prodEnv().with(env{"WEBHOOK_TARGET_ALLOWED_CIDRS": "10.20.0.0/16, 192.0.2.7"}).get)
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("192.0.2.7/32")}, cfg.WebhookTargetAllowedCIDRs)
	for _, bad := range []string{"10.0.0.1/8", "hooks.internal", "10.0.0.0/33"} {
		_, err := Load(devEnv().with(env{"WEBHOOK_TARGET_ALLOWED_CIDRS": bad}).get)
		require.ErrorContains(t, err, "WEBHOOK_TARGET_ALLOWED_CIDRS", bad)
	}
}

// PERSISTED_DOCUMENTS_MANIFEST is off by default; set, it must name a readable
// regular file (its content is checked when the server loads it).
func TestLoadPersistedDocumentsManifest(t *testing.T) {
	t.Parallel()
	cfg, err := Load(devEnv().get)
	require.NoError(t, err)
	require.Empty(t, cfg.PersistedDocumentsManifest)

	dir := t.TempDir()
	manifest := filepath.Join(dir, "persisted-documents.json")
	require.NoError(t, os.WriteFile(manifest, []byte("{}"), 0o600))
	cfg, err = Load(prodEnv().with(env{"PERSISTED_DOCUMENTS_MANIFEST": " " + manifest + " "}).get)
	require.NoError(t, err)
	require.Equal(t, manifest, cfg.PersistedDocumentsManifest)

	for _, bad := range []string{filepath.Join(dir, "missing.json"), dir} {
		_, err := Load(devEnv().with(env{"PERSISTED_DOCUMENTS_MANIFEST": bad}).get)
		require.ErrorContains(t, err, "PERSISTED_DOCUMENTS_MANIFEST")
		require.NotContains(t, err.Error(), dir, "the message names the variable, not its value")
	}
}
