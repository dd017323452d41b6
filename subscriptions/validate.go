package subscriptions

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scoville/scoville/models"
)

// field bounds for addresses, in runes.
var addressLimits = []struct {
	name     string
	max      int
	required bool
	get      func(*models.Address) *string
}{
	{"name", 200, true, func(a *models.Address) *string { return &a.Name }},
	{"line1", 200, true, func(a *models.Address) *string { return &a.Line1 }},
	{"line2", 200, false, func(a *models.Address) *string { return a.Line2 }},
	{"city", 100, true, func(a *models.Address) *string { return &a.City }},
	{"postalCode", 20, true, func(a *models.Address) *string { return &a.PostalCode }},
	{"region", 100, false, func(a *models.Address) *string { return a.Region }},
}

// NormalizeAddress trims every field, upper-cases the country and checks bounds and the
// ISO 3166-1 alpha-2 country. Errors name the field under path.
func NormalizeAddress(in models.Address, path ...string) (models.Address, error) {
	a := in
	if a.Line2 != nil {
		v := *a.Line2
		a.Line2 = &v
	}
	if a.Region != nil {
		v := *a.Region
		a.Region = &v
	}
	at := func(f string) []string { return append(slices.Clone(path), f) }
	for _, l := range addressLimits {
		p := l.get(&a)
		if p == nil {
			continue
		}
		*p = strings.TrimSpace(*p)
		switch n := utf8.RuneCountInString(*p); {
		case !utf8.ValidString(*p) || strings.ContainsFunc(*p, unicode.IsControl):
			return a, models.NewUserError(models.UserErrorInvalid, "contains characters that are not allowed", at(l.name)...)
		case n == 0 && l.required:
			return a, models.NewUserError(models.UserErrorInvalid, "is required", at(l.name)...)
		case n > l.max:
			return a, models.NewUserError(models.UserErrorInvalid, "is too long (at most "+strconv.Itoa(l.max)+" characters)", at(l.name)...)
		}
	}
	if a.Line2 != nil && *a.Line2 == "" {
		a.Line2 = nil
	}
	if a.Region != nil && *a.Region == "" {
		a.Region = nil
	}
	a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	if !isCountry(a.Country) {
		return a, models.NewUserError(models.UserErrorInvalid, "must be an ISO 3166-1 alpha-2 country code such as US or DE", at("country")...)
	}
	return a, nil
}

// isCountry accepts exactly the two-letter codes of countries (not groupings such as EU).
func isCountry(code string) bool { return countries[code] }

// Origins is the allow-list of redirect origins (scheme://host[:port], normalized).
type Origins []string

// Check returns nil when raw is an absolute http(s) URL whose origin is exactly one of
// the allowed ones. User info, other schemes, look-alike hosts and other ports fail.
func (o Origins) Check(raw string, path ...string) error {
	bad := models.NewUserError(models.UserErrorInvalid, "must be a URL on an allowed origin", path...)
	if raw == "" || len(raw) > 2048 || strings.ContainsFunc(raw, unicode.IsSpace) || strings.Contains(raw, `\`) {
		return bad
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return bad
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return bad
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	origin := scheme + "://" + host
	if strings.Contains(host, ":") {
		origin = scheme + "://[" + host + "]"
	}
	if port != "" {
		origin += ":" + port
	}
	if !slices.Contains(o, origin) {
		return bad
	}
	return nil
}
