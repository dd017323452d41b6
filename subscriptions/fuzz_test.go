package subscriptions

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/scoville/scoville/models"
)

// FuzzNormalizeAddress feeds arbitrary address fields to the validator. An accepted
// address is trimmed, valid UTF-8 without control characters, within bounds, with an
// ISO 3166-1 country, and normalizing it again changes nothing; a refused one is a
// UserError naming a field under the given path; the input is never modified.
// Seeds: testdata/fuzz/FuzzNormalizeAddress.
func FuzzNormalizeAddress(f *testing.F) {
	f.Add("Ada Lovelace", "1 Main St", "Apt 2", "Springfield", "12345", "IL", "us", true, true)
	f.Add(" ", "x", "", "y", "1", "", "EU", false, false)
	f.Add("a\x00b", "x", "", "y", "1", "", "DE", false, false)
	f.Add("\xff", "x", "", "y", "1", "", "DE", true, false)

	f.Fuzz(func(t *testing.T, name, line1, line2, city, postal, region, country string, hasLine2, hasRegion bool) {
		in := models.Address{Name: name, Line1: line1, City: city, PostalCode: postal, Country: country}
		if hasLine2 {
			in.Line2 = &line2
		}
		if hasRegion {
			in.Region = &region
		}
		before := line2 + "|" + region
		out, err := NormalizeAddress(in, "input", "address")
		if line2+"|"+region != before || in.Name != name || in.Country != country {
			t.Fatal("the caller's address was modified")
		}
		if err != nil {
			var ue *models.UserError
			if !errors.As(err, &ue) {
				t.Fatalf("not a UserError: %T %v", err, err)
			}
			if len(ue.Field) != 3 || ue.Field[0] != "input" || ue.Field[1] != "address" {
				t.Fatalf("error path %v does not name a field under input.address", ue.Field)
			}
			return
		}
		fields := []string{out.Name, out.Line1, out.City, out.PostalCode, out.Country}
		if out.Line2 != nil {
			fields = append(fields, *out.Line2)
		}
		if out.Region != nil {
			fields = append(fields, *out.Region)
		}
		for _, v := range fields {
			if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) || strings.TrimSpace(v) != v {
				t.Fatalf("accepted field %q", v)
			}
		}
		for _, v := range []string{out.Name, out.Line1, out.City, out.PostalCode} {
			if v == "" {
				t.Fatal("accepted an empty required field")
			}
		}
		if utf8.RuneCountInString(out.PostalCode) > 20 || utf8.RuneCountInString(out.Name) > 200 {
			t.Fatal("accepted an over-long field")
		}
		if len(out.Country) != 2 || strings.ToUpper(out.Country) != out.Country || !isCountry(out.Country) {
			t.Fatalf("accepted country %q", out.Country)
		}
		again, err := NormalizeAddress(out, "input", "address")
		if err != nil || !sameAddress(again, out) {
			t.Fatalf("normalizing twice differs: %v", err)
		}
	})
}

func sameAddress(a, b models.Address) bool {
	deref := func(p *string) string {
		if p == nil {
			return "\x00nil"
		}
		return *p
	}
	return a.Name == b.Name && a.Line1 == b.Line1 && a.City == b.City && a.PostalCode == b.PostalCode &&
		a.Country == b.Country && deref(a.Line2) == deref(b.Line2) && deref(a.Region) == deref(b.Region)
}

// fuzzOrigins is the allow-list FuzzOriginsCheck checks against.
var fuzzOrigins = Origins{"https://shop.example", "http://localhost:3000", "https://[::1]:8443"}

// FuzzOriginsCheck feeds arbitrary redirect URLs to the allow-list. An accepted URL
// parses as an absolute http(s) URL without user info, with no whitespace or
// backslash (which browsers read differently from Go), and its origin as a browser
// computes it is on the list. Seeds: testdata/fuzz/FuzzOriginsCheck.
func FuzzOriginsCheck(f *testing.F) {
	for _, s := range []string{
		"https://shop.example/thanks", "https://shop.example:443/x", "https://shop.example.evil.test/",
		"https://evil.test@shop.example/", "https://shop.example@evil.test/", "http://localhost:3000/a?b#c",
		"javascript:alert(1)", `https:\\shop.example`, "//shop.example/x", "https://SHOP.example/",
		"https://[::1]:8443/", "https://shop.example%2f@evil.test",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := fuzzOrigins.Check(raw, "input", "successUrl")
		if err != nil {
			var ue *models.UserError
			if !errors.As(err, &ue) || !slices.Equal(ue.Field, []string{"input", "successUrl"}) {
				t.Fatalf("refusal is not a UserError on input.successUrl: %v", err)
			}
			return
		}
		if strings.ContainsFunc(raw, unicode.IsSpace) || strings.Contains(raw, `\`) || len(raw) > 2048 {
			t.Fatalf("accepted %q", raw)
		}
		u, perr := url.Parse(raw)
		if perr != nil || u.User != nil || u.Opaque != "" {
			t.Fatalf("accepted %q", raw)
		}
		scheme := strings.ToLower(u.Scheme)
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80"}[scheme]
		}
		host := strings.ToLower(u.Hostname())
		var ok bool
		for _, o := range fuzzOrigins {
			ou, _ := url.Parse(o)
			op := ou.Port()
			if op == "" {
				op = map[string]string{"https": "443", "http": "80"}[ou.Scheme]
			}
			if ou.Scheme == scheme && ou.Hostname() == host && op == port {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("accepted %q, whose origin %s://%s:%s is not allowed", raw, scheme, host, port)
		}
	})
}
