package config

import "strings"

// traces reads the standard OTEL_* variables that decide whether traces are
// recorded at all (Config.Traces); their values are the exporter's to check.
func (l *loader) traces() bool {
	if strings.EqualFold(l.get("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(l.get("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return l.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || l.get("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}
