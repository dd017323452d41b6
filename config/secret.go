package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a non-empty Secret shows instead of its value.
const redacted = "[REDACTED]"

// Secret holds a credential. Every way of printing, marshalling or logging it gives
// "[REDACTED]" ("" when empty, so an unset secret is still visible as unset); only
// Reveal returns the value, which makes each use of a credential easy to find.
type Secret string

// Reveal returns the credential itself, for the one place that must send it on
// (a database driver, an API client). Never log its result.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String redacts the secret so %s, %v and string concatenation via Stringer
// never show it.
func (s Secret) String() string { return s.shown() }

// GoString redacts the secret under %#v.
func (s Secret) GoString() string { return s.shown() }

// Format redacts the secret under every fmt verb (%v %+v %#v %s %q %x ...), which
// fmt prefers over String and GoString; %q gives the quoted placeholder.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", s.shown())
		return
	}
	_, _ = io.WriteString(f, s.shown())
}

// MarshalJSON redacts the secret in JSON, including slog's JSON handler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.shown()) }

// MarshalText redacts the secret in text encodings. (encoding/json writes map
// keys of string kind directly, so never key a map by a Secret.)
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// LogValue redacts the secret in slog records, whatever the handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }
