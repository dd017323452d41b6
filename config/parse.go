package config

import (
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Every helper here reports problems with fixed text and positions only: the
// errors of url.Parse, strconv and netip quote their input, so they are dropped.

// listenAddr checks a host:port listen address with a numeric port (0 lets the
// kernel pick one); def is returned when the variable is unset.
func (l *loader) listenAddr(name, def string) string {
	v := l.get(name)
	if v == "" {
		return def
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		l.failf(name, "must be host:port, e.g. :8080 or 127.0.0.1:8080")
		return ""
	}
	if host != "" && !validHost(host) {
		l.failf(name, "host is not a valid host name or IP address")
		return ""
	}
	if _, ok := parsePort(port, 0); !ok {
		l.failf(name, "port must be a number from 0 to 65535")
		return ""
	}
	return v
}

// sameListener reports whether two valid listen addresses would collide: same
// port, and the same host or a wildcard on either side.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := parsePort(pa, 0)
	nb, _ := parsePort(pb, 0)
	if na != nb || na == 0 {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return strings.EqualFold(ha, hb) || wild(ha) || wild(hb)
}

// databaseURL accepts a postgres:// or postgresql:// URL or a libpq key=value
// connection string.
func (l *loader) databaseURL(name string, required bool) Secret {
	v := l.get(name)
	if v == "" && !required {
		return ""
	}
	if !l.required(name, v, true) {
		return ""
	}
	const want = "must be a postgres:// or postgresql:// URL or a key=value connection string"
	if i := strings.Index(v, "://"); i >= 0 {
		scheme := strings.ToLower(v[:i])
		if scheme != "postgres" && scheme != "postgresql" {
			l.failf(name, want)
			return ""
		}
		if _, err := url.Parse(v); err != nil {
			l.failf(name, "is not a valid URL (percent-encode special characters in the user name and password)")
			return ""
		}
		return Secret(v)
	}
	if !strings.Contains(v, "=") {
		l.failf(name, want)
		return ""
	}
	if !validKeyValueDSN(v) {
		l.failf(name, "is not a valid key=value connection string (quote values containing spaces with single quotes)")
		return ""
	}
	return Secret(v)
}

// validKeyValueDSN checks the shape of a libpq keyword/value connection string:
// one or more key = value pairs separated by whitespace, values optionally in
// single quotes, with backslash escapes.
func validKeyValueDSN(s string) bool {
	i, pairs := 0, 0
	skipSpace := func() {
		for i < len(s) && isSpace(rune(s[i])) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(s) {
			return pairs > 0
		}
		start := i
		for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		if i == start {
			return false
		}
		skipSpace()
		if i == len(s) || s[i] != '=' {
			return false
		}
		i++
		skipSpace()
		if i < len(s) && s[i] == '\'' {
			i++
			for {
				if i >= len(s) {
					return false // unterminated quote
				}
				if s[i] == '\\' {
					i += 2
					continue
				}
				if s[i] == '\'' {
					i++
					break
				}
				i++
			}
			if i < len(s) && !isSpace(rune(s[i])) {
				return false
			}
		} else {
			start := i
			for i < len(s) && !isSpace(rune(s[i])) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			if i == start {
				return false // an empty value must be written as ''
			}
			if i > len(s) {
				return false // trailing backslash
			}
		}
		pairs++
	}
}

// httpURL checks an optional absolute http(s) URL with a host, no user info, no
// query or fragment, and https in production. It returns the value unchanged.
func (l *loader) httpURL(name string) string {
	v := l.get(name)
	if v == "" {
		return ""
	}
	if strings.ContainsAny(v, "?#") {
		l.failf(name, "must not contain a query or fragment")
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		l.failf(name, "must be an absolute http:// or https:// URL")
		return ""
	}
	if u.User != nil {
		l.failf(name, "must not contain a user name or password")
		return ""
	}
	if !validHost(u.Hostname()) {
		l.failf(name, "host is not a valid host name or IP address")
		return ""
	}
	if p := u.Port(); p != "" {
		if _, ok := parsePort(p, 1); !ok {
			l.failf(name, "port must be a number from 1 to 65535")
			return ""
		}
	}
	if l.prod && u.Scheme != "https" {
		l.failf(name, "must use https in production")
		return ""
	}
	return v
}

// origins parses a comma list of origins. Empty entries (a trailing comma) are
// skipped; duplicates after normalization are dropped; "*" is kept only when
// starInDevelopment and not in production.
func (l *loader) origins(name string, starInDevelopment bool) []string {
	v := l.get(name)
	if v == "" {
		return nil
	}
	var out []string
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		n := i + 1
		if item == "" {
			continue
		}
		if item == "*" {
			switch {
			case starInDevelopment && !l.prod:
				out = appendNew(out, "*")
			case starInDevelopment:
				l.failf(name, `entry %d: "*" is not allowed in production; list the origins`, n)
			default:
				l.failf(name, `entry %d: "*" is not allowed; list the origins`, n)
			}
			continue
		}
		o, problem := normalizeOrigin(item, l.prod)
		if problem != "" {
			l.failf(name, "entry %d %s", n, problem)
			continue
		}
		out = appendNew(out, o)
	}
	return out
}

// normalizeOrigin returns the origin as a browser sends it in the Origin header:
// lower-case scheme and host, IPv6 in brackets, no default port. problem is
// non-empty (and contains no part of raw) when raw is not an origin.
func normalizeOrigin(raw string, httpsOnly bool) (origin, problem string) {
	const want = "is not an origin (scheme://host[:port])"
	if strings.ContainsAny(raw, "?#") {
		return "", "must not contain a query or fragment"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return "", want
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "must use http or https"
	}
	if u.User != nil {
		return "", "must not contain a user name or password"
	}
	if u.Path != "" && u.Path != "/" {
		return "", "must not contain a path"
	}
	host := u.Hostname()
	for _, r := range host {
		if r > 0x7f {
			return "", "must write the host name in ASCII (its xn-- form)"
		}
	}
	if !validHost(host) {
		return "", "host is not a valid host name or IP address (wildcards are not supported)"
	}
	host = strings.ToLower(host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := ""
	if p := u.Port(); p != "" {
		n, ok := parsePort(p, 1)
		if !ok {
			return "", "port must be a number from 1 to 65535"
		}
		if !(u.Scheme == "https" && n == 443 || u.Scheme == "http" && n == 80) {
			port = ":" + strconv.Itoa(n)
		}
	}
	if httpsOnly && u.Scheme != "https" {
		return "", "must use https in production"
	}
	return u.Scheme + "://" + host + port, ""
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// prefixes parses a comma list of CIDRs or bare IPs (one-address prefixes).
// A CIDR with host bits set is refused rather than silently widened.
func (l *loader) prefixes(name string) []netip.Prefix {
	v := l.get(name)
	if v == "" {
		return nil
	}
	var out []netip.Prefix
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		n := i + 1
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				l.failf(name, "entry %d is not an IP address or CIDR", n)
				continue
			}
			if p != p.Masked() {
				l.failf(name, "entry %d has bits set after its prefix length (write the network address)", n)
				continue
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			l.failf(name, "entry %d is not an IP address or CIDR", n)
			continue
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// smtpURL checks an optional smtp:// or smtps:// URL with a host and a port.
func (l *loader) smtpURL(name string) Secret {
	v := l.get(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil {
		l.failf(name, "is not a valid URL (percent-encode special characters in the user name and password)")
		return ""
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		l.failf(name, "must start with smtp:// or smtps://")
		return ""
	}
	if u.Opaque != "" || u.Hostname() == "" || !validHost(u.Hostname()) {
		l.failf(name, "must include a valid host, e.g. smtp://user:pass@mail.example.com:587")
		return ""
	}
	if _, ok := parsePort(u.Port(), 1); !ok {
		l.failf(name, "must include a port from 1 to 65535, e.g. smtp://user:pass@mail.example.com:587")
		return ""
	}
	return Secret(v)
}

// parsePort accepts 1 to 5 decimal digits with a value from lo to 65535.
func parsePort(p string, lo int) (int, bool) {
	if p == "" || len(p) > 5 {
		return 0, false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, false
		}
	}
	n, _ := strconv.Atoi(p)
	return n, n >= lo && n <= 65535
}

// validHost accepts an IP address without a zone or a DNS-style host name
// (letters, digits, '-' and '_' in dot-separated labels; a trailing dot is fine).
func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// countries reads a comma list of ISO 3166-1 alpha-2 codes; Stripe's Checkout refuses
// the few it cannot ship to, so those are refused here, at start, instead.
func (l *loader) countries(name, def string) []string {
	v := l.get(name)
	if v == "" {
		v = def
	}
	var out []string
	seen := map[string]bool{}
	for i, part := range strings.Split(v, ",") {
		c := strings.ToUpper(strings.TrimSpace(part))
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			l.failf(name, "entry %d is not a two-letter country code", i+1)
			return nil
		}
		if strings.Contains(checkoutUnsupported, c) {
			l.failf(name, "entry %d is a country Stripe Checkout cannot ship to", i+1)
			return nil
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// checkoutUnsupported lists the codes Stripe refuses in allowed_countries.
const checkoutUnsupported = "AS,CX,CC,CU,HM,IR,KP,MH,FM,NF,MP,PW,SD,SY,UM,VI"

// regularFile reads a path that, when set, must name a regular file the process
// can open; empty stays empty. Whether its content is right is for its user to
// check (the message never quotes the path's content).
func (l *loader) regularFile(name string) string {
	v := l.get(name)
	if v == "" {
		return ""
	}
	f, err := os.Open(v)
	if err != nil {
		l.failf(name, "must name a readable file")
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		l.failf(name, "must name a regular file")
		return ""
	}
	return v
}
