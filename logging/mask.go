package logging

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces a sensitive value wherever one is logged.
const Redacted = "[REDACTED]"

// sensitiveKeyParts are attribute keys (lower case, matched as substrings) whose
// values never reach a log line whatever the caller passed.
var sensitiveKeyParts = []string{
	"authorization", "token", "secret", "password", "passwd", "passphrase", "credential",
	"email", "e-mail", "e_mail", "cookie", "api_key", "apikey", "private_key", "dsn",
	"database_url", "card", "address", "phone", "street", "postal", "postcode",
	"payload", "body", "signature",
}

// sensitiveKeyNames are whole keys (lower case, without "_", "-", "." or spaces) that
// hold personal data: people's names and the parts of a postal address.
var sensitiveKeyNames = map[string]bool{
	"name": true, "fullname": true, "firstname": true, "lastname": true, "givenname": true,
	"familyname": true, "middlename": true, "displayname": true, "customername": true,
	"nickname": true, "preferredusername": true, "recipient": true, "to": true,
	"line1": true, "line2": true, "city": true, "zip": true, "zipcode": true,
	"shipping": true, "billing": true, "billingdetails": true, "customerdetails": true,
	"shippingdetails": true, "raw": true, "pwd": true,
}

// IsSensitiveKey reports whether a value logged under key must be masked. It is
// also applied to group names (a whole group is masked) and to JSON object keys
// found inside logged text.
func IsSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range sensitiveKeyParts {
		if strings.Contains(k, s) {
			return true
		}
	}
	return sensitiveKeyNames[keySeparators.Replace(k)]
}

// keySeparators drops what sensitiveKeyNames are written without. Built once: a
// Replacer is safe for concurrent use, and building one per key cost every logged
// attribute (each request's access line) an allocation-heavy setup.
var keySeparators = strings.NewReplacer("_", "", "-", "", ".", "", " ", "")

// maskAttr masks a's value when its key is sensitive (hidden: it sits under a
// sensitive group), and masks secrets inside any text it carries otherwise.
func maskAttr(a slog.Attr, hidden bool) slog.Attr {
	a.Value = a.Value.Resolve()
	sensitive := a.Key != "" && IsSensitiveKey(a.Key)
	if a.Value.Kind() == slog.KindGroup {
		if sensitive {
			return slog.String(a.Key, Redacted)
		}
		group := a.Value.Group()
		masked := make([]slog.Attr, len(group))
		for i, g := range group {
			masked[i] = maskAttr(g, hidden)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(masked...)}
	}
	if sensitive || hidden {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, MaskText(a.Value.String()))
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: maskAny(a.Value.Any())}
	}
	return a
}

// maskAny masks what a non-scalar value would print: an error's message, bytes as
// text, anything else through its JSON form (kept as JSON when still valid).
func maskAny(v any) slog.Value {
	switch t := v.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error:
		return slog.StringValue(MaskText(t.Error()))
	case []byte:
		return slog.StringValue(MaskText(string(t)))
	case fmt.Stringer:
		return slog.StringValue(MaskText(t.String()))
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return slog.StringValue(MaskText(fmt.Sprintf("%+v", v)))
	}
	s := string(raw)
	masked := MaskText(s)
	if masked == s {
		return slog.AnyValue(v)
	}
	if json.Valid([]byte(masked)) {
		return slog.AnyValue(json.RawMessage(masked))
	}
	return slog.StringValue(masked)
}

var (
	emailPattern  = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}`)
	bearerPattern = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[^\s"',;]+`)
	jwtPattern    = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?`)
	stripePattern = regexp.MustCompile(`\b(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]+|(?:sk|rk)_[0-9A-Za-z]{20,}|whsec_[0-9A-Za-z]+|(?:pi|seti|cs|src)_[0-9A-Za-z]+_secret_[0-9A-Za-z]+)`)
	// URL user information: scheme://user:password@host keeps the user, not the password.
	urlPasswordPattern = regexp.MustCompile(`\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@"]*):[^/\s@"]*@`)
	// key=value and key: value pairs of secrets in query strings, DSNs and messages.
	pairPattern = regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|id_token|api_?key|sslpassword)\s*[=:]\s*)([^\s&"',;]+)`)
	// "key": "value" in JSON, and \"key\": \"value\" in JSON quoted inside a string.
	jsonPairPattern        = regexp.MustCompile(`"([^"\\]{1,64})"(\s*:\s*)"((?:[^"\\]|\\.)*)"`)
	escapedJSONPairPattern = regexp.MustCompile(`\\"([^"\\]{1,64})\\"(\s*:\s*)\\"((?:[^"\\]|\\[^"])*)\\"`)
	// Go's %+v of a struct: {Name:Ada Lovelace Line1:1 Pepper Lane ...}.
	goFieldPattern = regexp.MustCompile(`([{\s])(Name|FullName|Email|Phone|Line1|Line2|City|PostalCode|Street|Address):([^{}]*?)(\s[A-Z][A-Za-z0-9]*:|})`)
	// Street addresses in running text: "1 Pepper Lane", "Hauptstraße 5".
	streetPattern = regexp.MustCompile(`\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][A-Za-z'-]+\s+){1,3}(?:Street|St|Lane|Ln|Road|Rd|Avenue|Ave|Boulevard|Blvd|Drive|Dr|Way|Court|Ct|Place|Pl|Terrace|Square|Sq|Alley|Parkway|Pkwy|Highway|Hwy)\b\.?|\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm)\s+\d{1,5}[a-z]?\b`)
)

// MaskText returns s with every secret, token, e-mail address and street address it
// can recognise by shape replaced by Redacted: bearer and JWT tokens, Stripe keys,
// webhook secrets and client secrets, passwords in URLs and key=value pairs, e-mail
// addresses, sensitive fields of JSON or of a Go struct printed with %+v, and
// common street-address shapes. It is for text whose origin is unknown, such as an
// error message quoting a database value; names are only caught by their key.
func MaskText(s string) string {
	if s == "" {
		return s
	}
	if strings.Contains(s, "://") {
		s = urlPasswordPattern.ReplaceAllString(s, "${1}:"+Redacted+"@")
	}
	if strings.Contains(s, `"`) {
		s = jsonPairPattern.ReplaceAllStringFunc(s, func(m string) string {
			sm := jsonPairPattern.FindStringSubmatch(m)
			if !IsSensitiveKey(sm[1]) {
				return m
			}
			return `"` + sm[1] + `"` + sm[2] + `"` + Redacted + `"`
		})
		if strings.Contains(s, `\"`) {
			s = escapedJSONPairPattern.ReplaceAllStringFunc(s, func(m string) string {
				sm := escapedJSONPairPattern.FindStringSubmatch(m)
				if !IsSensitiveKey(sm[1]) {
					return m
				}
				return `\"` + sm[1] + `\"` + sm[2] + `\"` + Redacted + `\"`
			})
		}
	}
	if strings.Contains(s, ":") {
		for range 16 { // each pass masks every other field; 16 covers any struct we log
			next := goFieldPattern.ReplaceAllStringFunc(s, func(m string) string {
				sm := goFieldPattern.FindStringSubmatch(m)
				if sm[3] == Redacted {
					return m
				}
				return sm[1] + sm[2] + ":" + Redacted + sm[4]
			})
			if next == s {
				break
			}
			s = next
		}
	}
	if strings.Contains(s, "@") {
		s = emailPattern.ReplaceAllString(s, Redacted)
	}
	s = bearerPattern.ReplaceAllString(s, "${1} "+Redacted)
	if strings.Contains(s, "eyJ") {
		s = jwtPattern.ReplaceAllString(s, Redacted)
	}
	if strings.Contains(s, "_") {
		s = stripePattern.ReplaceAllString(s, Redacted)
	}
	if strings.ContainsAny(s, "=:") {
		s = pairPattern.ReplaceAllString(s, "${1}"+Redacted)
	}
	if strings.ContainsAny(s, "0123456789") {
		s = streetPattern.ReplaceAllString(s, Redacted)
	}
	return s
}
