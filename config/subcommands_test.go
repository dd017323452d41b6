package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/sealing"
)

func TestLoadDevIDP(t *testing.T) {
	t.Parallel()

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		for _, e := range []env{{}, {"APP_ENV": "development"}, {"APP_ENV": "  development "}} {
			c, err := LoadDevIDP(e.get)
			require.NoError(t, err)
			require.Equal(t, &DevIDP{
				Addr: DevIDPDefaultAddr, Audience: "scoville-api",
				RedirectURIs: []string{"http://127.0.0.1:8080/playground", "http://localhost:8080/playground"},
			}, c)
		}
	})

	t.Run("set", func(t *testing.T) {
		t.Parallel()
		c, err := LoadDevIDP(env{
			"DEVIDP_ADDR": " [::1]:9100 ", "OIDC_AUDIENCE": "shop-api",
			"DEVIDP_REDIRECT_URIS": "http://127.0.0.1:3000/playground , http://localhost:3000/cb",
		}.get)
		require.NoError(t, err)
		require.Equal(t, &DevIDP{
			Addr: "[::1]:9100", Audience: "shop-api",
			RedirectURIs: []string{"http://127.0.0.1:3000/playground", "http://localhost:3000/cb"},
		}, c)
	})

	t.Run("refused outside development", func(t *testing.T) {
		t.Parallel()
		// Anything but development, look-alikes included, even with valid settings.
		for _, v := range []string{"production", "Development", "dev", "development,production"} {
			c, err := LoadDevIDP(env{"APP_ENV": v, "DEVIDP_ADDR": "127.0.0.1:9096"}.get)
			require.ErrorIs(t, err, ErrDevIDPNotDevelopment, v)
			require.Nil(t, c)
		}
	})

	t.Run("problems name the variable and never quote the value", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ name, value string }{
			{"DEVIDP_ADDR", "0.0.0.0:9096"},      // every interface
			{"DEVIDP_ADDR", "192.168.1.9:9096"},  // reachable from the network
			{"DEVIDP_ADDR", "localhost:9096"},    // a name may resolve anywhere
			{"DEVIDP_ADDR", "127.0.0.2"},         // no port
			{"DEVIDP_ADDR", "127.0.0.4:70000"},   // not a port
			{"DEVIDP_ADDR", "127.0.0.1.evil:80"}, // a look-alike host
			{"OIDC_AUDIENCE", "scoville api"},
		} {
			c, err := LoadDevIDP(env{tc.name: tc.value}.get)
			require.Error(t, err, tc.value)
			require.Nil(t, c)
			require.Contains(t, err.Error(), tc.name)
			require.NotContains(t, err.Error(), tc.value)
		}
		// Every problem at once.
		_, err := LoadDevIDP(env{"DEVIDP_ADDR": "0.0.0.0:1", "OIDC_AUDIENCE": "a b"}.get)
		require.ErrorContains(t, err, "DEVIDP_ADDR")
		require.ErrorContains(t, err, "OIDC_AUDIENCE")
	})
}

func TestLoadKeys(t *testing.T) {
	t.Parallel()
	c, err := LoadKeys(env{}.get)
	require.NoError(t, err)
	require.Empty(t, c.DataEncryptionKeys, "unset: rotate reads stdin")

	c, err = LoadKeys(env{"DATA_ENCRYPTION_KEYS": " " + canaryDEK + "\n"}.get)
	require.NoError(t, err)
	require.Equal(t, canaryDEK, c.DataEncryptionKeys.Reveal())

	// The development set is well-formed; sealing.Rotate refuses to rotate it.
	c, err = LoadKeys(env{"DATA_ENCRYPTION_KEYS": sealing.DevelopmentKeys}.get)
	require.NoError(t, err)
	require.Equal(t, sealing.DevelopmentKeys, c.DataEncryptionKeys.Reveal())

	c, err = LoadKeys(env{"DATA_ENCRYPTION_KEYS": "bm90IGtleXM="}.get)
	require.Error(t, err)
	require.Nil(t, c)
	require.ErrorContains(t, err, "DATA_ENCRYPTION_KEYS")
	require.NotContains(t, err.Error(), "bm90IGtleXM=")
}

func TestLoadWebhookLoad(t *testing.T) {
	t.Parallel()
	c, err := LoadWebhookLoad(env{}.get)
	require.NoError(t, err)
	require.Equal(t, &WebhookLoad{}, c, "every variable is optional: flags may give them")

	c, err = LoadWebhookLoad(env{
		"STRIPE_WEBHOOK_SECRET": canaryWebhook, "DATABASE_URL": "postgres://u:" + canaryDBPassword + "@127.0.0.1:5432/x",
		"DATA_ENCRYPTION_KEYS": canaryDEK, "APP_ENV": "production",
	}.get)
	require.NoError(t, err)
	require.Equal(t, canaryWebhook, c.StripeWebhookSecret.Reveal())
	require.Equal(t, canaryDEK, c.DataEncryptionKeys.Reveal())
	require.Contains(t, c.DatabaseURL.Reveal(), canaryDBPassword)

	_, err = LoadWebhookLoad(env{
		"STRIPE_WEBHOOK_SECRET": "sk_CANARYnotawebhook", "DATABASE_URL": "mysql://CANARY@h/x", "DATA_ENCRYPTION_KEYS": "CANARYbm90",
	}.get)
	require.Error(t, err)
	for _, name := range []string{"STRIPE_WEBHOOK_SECRET", "DATABASE_URL", "DATA_ENCRYPTION_KEYS"} {
		require.ErrorContains(t, err, name)
	}
	require.NotContains(t, err.Error(), "CANARY")
}

func TestLoadBenchTools(t *testing.T) {
	t.Parallel()
	c, err := LoadBenchTools(env{}.get)
	require.NoError(t, err)
	require.Equal(t, &BenchTools{}, c)

	c, err = LoadBenchTools(env{"WEBHOOKSINK_SECRET": canaryWebhook, "SCOVILLE_PPROF_ADDR": "127.0.0.1:6060"}.get)
	require.NoError(t, err)
	require.Equal(t, canaryWebhook, c.SinkSecret.Reveal())
	require.Equal(t, "127.0.0.1:6060", c.PprofAddr)

	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.0.0.1:6060", "localhost", "127.0.0.1"} {
		_, err = LoadBenchTools(env{"SCOVILLE_PPROF_ADDR": addr}.get)
		require.ErrorContains(t, err, "SCOVILLE_PPROF_ADDR", addr)
	}
	_, err = LoadBenchTools(env{"WEBHOOKSINK_SECRET": "sk_CANARYnotawebhook"}.get)
	require.ErrorContains(t, err, "WEBHOOKSINK_SECRET")
	require.NotContains(t, err.Error(), "CANARY")
}
