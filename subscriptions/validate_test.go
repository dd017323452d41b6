package subscriptions

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

func TestOriginsCheck(t *testing.T) {
	t.Parallel()
	allowed := Origins{"https://shop.example", "http://localhost:3000", "https://[::1]:8443"}
	for raw, ok := range map[string]bool{
		"https://shop.example/thanks?x=1":    true,
		"https://SHOP.example:443/thanks":    true,
		"http://localhost:3000/cart":         true,
		"https://[::1]:8443/x":               true,
		"http://shop.example/thanks":         false,
		"https://shop.example.evil.com/":     false,
		"https://shop.example@evil.com/":     false,
		"https://evil.com\\@shop.example/":   false,
		"https://shop.example:444/":          false,
		"http://localhost:3001/":             false,
		"ftp://shop.example/":                false,
		"//shop.example/x":                   false,
		"https://shop.example /x":            false,
		"javascript://shop.example/%0aalert": false,
	} {
		err := allowed.Check(raw, "input", "url")
		require.Equal(t, ok, err == nil, raw)
	}
}

func TestNormalizeAddress(t *testing.T) {
	t.Parallel()
	empty := "  "
	a, err := NormalizeAddress(models.Address{Name: " Ada ", Line1: "1 Lane", Line2: &empty, City: "Berlin", PostalCode: "10115", Country: " de "})
	require.NoError(t, err)
	require.Equal(t, "Ada", a.Name)
	require.Nil(t, a.Line2, "blank optional lines are dropped")
	require.Equal(t, "DE", a.Country)
	for _, country := range []string{"EU", "UN", "ZZ", "DEU", "", "1"} {
		_, err := NormalizeAddress(models.Address{Name: "A", Line1: "L", City: "C", PostalCode: "P", Country: country})
		require.Error(t, err, country)
	}
}

func TestCountryListIsTheISOList(t *testing.T) {
	t.Parallel()
	require.Len(t, countries, 250, "249 ISO 3166-1 codes and XK")
	for c := range countries {
		require.Regexp(t, `^[A-Z]{2}$`, c)
	}
}
