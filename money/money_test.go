package money

import (
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// required is the list of currencies the brief (PAY-5) says the table must hold.
var required = []string{
	"USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "PLN",
	"CZK", "HUF", "JPY", "SGD", "HKD", "MXN", "BRL", "INR", "ZAR", "AED",
}

func TestTableIsConsistent(t *testing.T) {
	code := regexp.MustCompile(`^[A-Z]{3}$`)
	require.True(t, slices.IsSortedFunc(currencies, func(a, b Currency) int {
		return strings.Compare(a.Code, b.Code)
	}), "table must be sorted by code (Lookup binary-searches it)")
	seen := map[string]bool{}
	for _, c := range currencies {
		t.Run(c.Code, func(t *testing.T) {
			require.Regexp(t, code, c.Code)
			require.False(t, seen[c.Code], "duplicate code")
			seen[c.Code] = true
			require.Contains(t, []int{0, 2, 3}, c.Exponent)
			require.Positive(t, c.Min)
			require.LessOrEqual(t, c.Min, c.Max)
			require.LessOrEqual(t, c.Max, int64(stripeMaxAmount))
			got, ok := Lookup(c.Code)
			require.True(t, ok)
			require.Equal(t, c, got)
		})
	}
	for _, r := range required {
		require.True(t, seen[r], "required currency %s missing", r)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		code     string
		ok       bool
		exponent int
		min      int64
	}{
		{code: "USD", ok: true, exponent: 2, min: 50},
		{code: "GBP", ok: true, exponent: 2, min: 30},
		{code: "JPY", ok: true, exponent: 0, min: 50},
		{code: "HUF", ok: true, exponent: 2, min: 175_00},
		{code: "MXN", ok: true, exponent: 2, min: 10_00},
		{code: "AED", ok: true, exponent: 2, min: 2_00},
		{code: "ZAR", ok: true, exponent: 2, min: 10_00},
		{code: "usd", ok: false},
		{code: "Usd", ok: false},
		{code: " USD", ok: false},
		{code: "USD ", ok: false},
		{code: "", ok: false},
		{code: "XYZ", ok: false},
		{code: "KWD", ok: false},
		{code: "USDX", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			c, ok := Lookup(tt.code)
			require.Equal(t, tt.ok, ok)
			if !tt.ok {
				require.Zero(t, c)
				return
			}
			require.Equal(t, tt.code, c.Code)
			require.Equal(t, tt.exponent, c.Exponent)
			require.Equal(t, tt.min, c.Min)
			require.Equal(t, int64(99_999_999), c.Max)
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "usd", want: "USD"},
		{in: " eur\t", want: "EUR"},
		{in: "\nJpy ", want: "JPY"},
		{in: "GBP", want: "GBP"},
		{in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, Normalize(tt.in))
			_, ok := Lookup(Normalize(tt.in))
			require.Equal(t, tt.want != "", ok)
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		amount  int64
		code    string
		wantErr error // nil, ErrUnknownCurrency, ErrNotPositive, or a *RangeError
	}{
		{name: "USD min-1", amount: 49, code: "USD", wantErr: &RangeError{Currency: "USD", Min: 50, Max: 99_999_999, Amount: 49}},
		{name: "USD min", amount: 50, code: "USD"},
		{name: "USD typical", amount: 2500, code: "USD"},
		{name: "USD max", amount: 99_999_999, code: "USD"},
		{name: "USD max+1", amount: 100_000_000, code: "USD", wantErr: &RangeError{Currency: "USD", Min: 50, Max: 99_999_999, Amount: 100_000_000}},
		{name: "JPY min-1", amount: 49, code: "JPY", wantErr: &RangeError{Currency: "JPY", Min: 50, Max: 99_999_999, Amount: 49}},
		{name: "JPY min", amount: 50, code: "JPY"},
		{name: "JPY max", amount: 99_999_999, code: "JPY"},
		{name: "JPY max+1", amount: 100_000_000, code: "JPY", wantErr: &RangeError{Currency: "JPY", Min: 50, Max: 99_999_999, Amount: 100_000_000}},
		{name: "HUF min-1", amount: 17_499, code: "HUF", wantErr: &RangeError{Currency: "HUF", Min: 17_500, Max: 99_999_999, Amount: 17_499}},
		{name: "HUF min", amount: 17_500, code: "HUF"},
		{name: "GBP min-1", amount: 29, code: "GBP", wantErr: &RangeError{Currency: "GBP", Min: 30, Max: 99_999_999, Amount: 29}},
		{name: "GBP min", amount: 30, code: "GBP"},
		{name: "int64 max", amount: math.MaxInt64, code: "EUR", wantErr: &RangeError{Currency: "EUR", Min: 50, Max: 99_999_999, Amount: math.MaxInt64}},
		{name: "zero", amount: 0, code: "USD", wantErr: ErrNotPositive},
		{name: "negative", amount: -2500, code: "USD", wantErr: ErrNotPositive},
		{name: "int64 min", amount: math.MinInt64, code: "JPY", wantErr: ErrNotPositive},
		{name: "unknown code", amount: 2500, code: "XYZ", wantErr: ErrUnknownCurrency},
		{name: "lower case refused", amount: 2500, code: "usd", wantErr: ErrUnknownCurrency},
		{name: "empty code", amount: 2500, code: "", wantErr: ErrUnknownCurrency},
		{name: "unknown code wins over zero", amount: 0, code: "XYZ", wantErr: ErrUnknownCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.amount, tt.code)
			var want *RangeError
			switch {
			case tt.wantErr == nil:
				require.NoError(t, err)
			case errors.As(tt.wantErr, &want):
				var got *RangeError
				require.ErrorAs(t, err, &got)
				require.Equal(t, want, got)
			default:
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

func TestValidateUnknownCurrencyNamesCode(t *testing.T) {
	err := Validate(2500, "usd")
	require.ErrorIs(t, err, ErrUnknownCurrency)
	require.EqualError(t, err, `unknown currency: "usd"`)
}

func TestRangeErrorMessage(t *testing.T) {
	tests := []struct {
		code string
		want string
	}{
		{code: "USD", want: "amount must be between 0.50 and 999,999.99 USD"},
		{code: "GBP", want: "amount must be between 0.30 and 999,999.99 GBP"},
		{code: "JPY", want: "amount must be between 50 and 99,999,999 JPY"},
		{code: "HUF", want: "amount must be between 175.00 and 999,999.99 HUF"},
		{code: "MXN", want: "amount must be between 10.00 and 999,999.99 MXN"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := Validate(1, tt.code)
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		amount int64
		code   string
		want   string
	}{
		{amount: 2500, code: "USD", want: "25.00 USD"},
		{amount: 50, code: "USD", want: "0.50 USD"},
		{amount: 5, code: "EUR", want: "0.05 EUR"},
		{amount: 0, code: "GBP", want: "0.00 GBP"},
		{amount: 123_450, code: "EUR", want: "1,234.50 EUR"},
		{amount: 99_999_999, code: "USD", want: "999,999.99 USD"},
		{amount: -2500, code: "USD", want: "-25.00 USD"},
		{amount: 500, code: "JPY", want: "500 JPY"},
		{amount: 1000, code: "JPY", want: "1,000 JPY"},
		{amount: 0, code: "JPY", want: "0 JPY"},
		{amount: -1_234_567, code: "JPY", want: "-1,234,567 JPY"},
		{amount: 2500, code: "usd", want: `2500 minor units of unknown currency "usd"`},
		{amount: 2500, code: "XYZ", want: `2500 minor units of unknown currency "XYZ"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, Format(tt.amount, tt.code))
		})
	}
}

// TestFormatMinor covers the exponent-3 currencies (KWD, BHD, ...) that the table does
// not hold yet, so adding one later needs no new formatting code.
func TestFormatMinor(t *testing.T) {
	tests := []struct {
		amount   int64
		exponent int
		want     string
	}{
		{amount: 0, exponent: 0, want: "0"},
		{amount: 999, exponent: 0, want: "999"},
		{amount: 1000, exponent: 0, want: "1,000"},
		{amount: 100_000, exponent: 0, want: "100,000"},
		{amount: 1, exponent: 2, want: "0.01"},
		{amount: 100, exponent: 2, want: "1.00"},
		{amount: 1, exponent: 3, want: "0.001"},
		{amount: 5_120, exponent: 3, want: "5.120"},
		{amount: 1_234_567, exponent: 3, want: "1,234.567"},
		{amount: -50, exponent: 3, want: "-0.050"},
		{amount: math.MaxInt64, exponent: 0, want: "9,223,372,036,854,775,807"},
		{amount: math.MinInt64, exponent: 0, want: "-9,223,372,036,854,775,808"},
		{amount: math.MinInt64, exponent: 2, want: "-92,233,720,368,547,758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, formatMinor(tt.amount, tt.exponent))
		})
	}
}

// TestLookupReturnsCopy guards the table: a caller changing its Currency must not
// change the limits every other caller sees.
func TestLookupReturnsCopy(t *testing.T) {
	c, ok := Lookup("USD")
	require.True(t, ok)
	c.Min = 1
	again, _ := Lookup("USD")
	require.Equal(t, int64(50), again.Min)
}
