package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Traces are on only when an OTLP endpoint is set, and the standard switches turn
// them off again.
func TestLoadReadsWhetherTracesAreOn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  env
		want bool
	}{
		{"no endpoint", env{}, false},
		{"an endpoint", env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"a traces endpoint", env{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"only blanks", env{"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, false},
		{"only other OTEL variables", env{"OTEL_SERVICE_NAME": "scoville", "OTEL_TRACES_SAMPLER": "always_on"}, false},
		{"the SDK disabled", env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{"no traces exporter", env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{"the SDK not disabled", env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(prodEnv().with(tc.env).get)
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.Traces)
		})
	}
}
