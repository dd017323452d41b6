// Package money holds the rules for amounts of money (REQUIREMENTS PAY-5): an amount is
// an int64 in the currency's minor units, each currency has a minimum and a maximum,
// and currencies missing from the table are refused.
//
// Amounts are never floats: a price, a charge and a refund are counts of cents (or of
// yen, for a currency without a minor unit), so arithmetic and comparisons are exact.
// Currency codes are upper-case ISO 4217; nothing here guesses at case or whitespace,
// so callers that accept user input call Normalize first, on purpose.
package money

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Currency describes one currency the business can charge in. It exists so amount
// checks and formatting read the same facts from one table instead of each caller
// hard-coding "divide by 100".
type Currency struct {
	// Code is the upper-case ISO 4217 code, e.g. "USD".
	Code string
	// Exponent is the number of minor-unit digits: 2 for USD (cents), 0 for JPY,
	// 3 for KWD/BHD/JOD/OMR/TND.
	Exponent int
	// Min and Max bound a single charge, in minor units, inclusive.
	Min, Max int64
}

// stripeMaxAmount is Stripe's limit of eight digits for an amount, in minor units
// (999,999.99 USD; 99,999,999 JPY). No currency below has a stricter documented limit.
const stripeMaxAmount = 99_999_999

// currencies is the one table of supported currencies, sorted by code (a test checks
// this, and Lookup relies on it). Minimums are Stripe's documented minimum charge
// amounts for card payments (docs.stripe.com/currencies, "Minimum and maximum charge
// amounts"). Stripe additionally checks that a charge is worth at least the minimum
// of the account's settlement currency after conversion, so these are a floor, not a
// guarantee that Stripe accepts the charge.
var currencies = []Currency{
	{Code: "AED", Exponent: 2, Min: 2_00, Max: stripeMaxAmount},
	{Code: "AUD", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "BRL", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "CAD", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "CHF", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "CZK", Exponent: 2, Min: 15_00, Max: stripeMaxAmount},
	{Code: "DKK", Exponent: 2, Min: 2_50, Max: stripeMaxAmount},
	{Code: "EUR", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "GBP", Exponent: 2, Min: 30, Max: stripeMaxAmount},
	{Code: "HKD", Exponent: 2, Min: 4_00, Max: stripeMaxAmount},
	// HUF: Stripe charges HUF with two decimals (so Exponent 2, as in ISO 4217) but
	// pays it out as a zero-decimal currency, so payout amounts must be divisible by
	// 100. Charges are all this package checks, so no extra rule here.
	{Code: "HUF", Exponent: 2, Min: 175_00, Max: stripeMaxAmount},
	{Code: "INR", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "JPY", Exponent: 0, Min: 50, Max: stripeMaxAmount},
	{Code: "MXN", Exponent: 2, Min: 10_00, Max: stripeMaxAmount},
	{Code: "NOK", Exponent: 2, Min: 3_00, Max: stripeMaxAmount},
	{Code: "NZD", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "PLN", Exponent: 2, Min: 2_00, Max: stripeMaxAmount},
	{Code: "SEK", Exponent: 2, Min: 3_00, Max: stripeMaxAmount},
	{Code: "SGD", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	{Code: "USD", Exponent: 2, Min: 50, Max: stripeMaxAmount},
	// ZAR: Stripe documents no ZAR minimum; its rule for such currencies is "USD 0.50
	// or the equivalent". 10.00 ZAR is a little over USD 0.50 at recent rates (about
	// 17-19 ZAR per USD), rounded up to whole rand so normal rate moves keep it above
	// the USD floor. Revisit if Stripe publishes a ZAR minimum.
	{Code: "ZAR", Exponent: 2, Min: 10_00, Max: stripeMaxAmount},
}

// Lookup returns the currency for an exact, upper-case ISO 4217 code. It does not
// normalise: "usd" is not found, so a caller that forgot to Normalize user input finds
// out instead of silently storing a lower-case code.
func Lookup(code string) (Currency, bool) {
	i, ok := slices.BinarySearchFunc(currencies, code, func(c Currency, code string) int {
		return strings.Compare(c.Code, code)
	})
	if !ok {
		return Currency{}, false
	}
	return currencies[i], true
}

// Normalize turns user input such as " usd " into the canonical form Lookup expects.
// It is separate from Lookup so normalising is a deliberate step at the edge of the
// system, not something every lookup does quietly.
func Normalize(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}

// ErrUnknownCurrency reports a currency code that is not in the table (including a
// code that is not upper case): refusing it is PAY-5's rule, and it keeps amounts in
// currencies whose minor unit we do not know out of the system.
var ErrUnknownCurrency = errors.New("unknown currency")

// ErrNotPositive reports a zero or negative amount: a price or a charge is always a
// positive amount of money, and it is a clearer message than a range error.
var ErrNotPositive = errors.New("amount must be positive")

// RangeError reports a positive amount outside the currency's [Min, Max]. It carries
// the limits so callers can show them or map them to an API error without parsing
// the message.
type RangeError struct {
	Currency string // upper-case ISO 4217 code
	Min, Max int64  // inclusive limits, in minor units
	Amount   int64  // the refused amount, in minor units
}

// Error says which range is allowed, in major units of the currency, e.g. "amount
// must be between 0.50 and 999,999.99 USD", because people think in dollars, not cents.
func (e *RangeError) Error() string {
	exp := 0
	if c, ok := Lookup(e.Currency); ok {
		exp = c.Exponent
	}
	return fmt.Sprintf("amount must be between %s and %s %s",
		formatMinor(e.Min, exp), formatMinor(e.Max, exp), e.Currency)
}

// Validate checks an amount in minor units against the currency's rules, so every
// writer of prices and charges enforces PAY-5 the same way. The code must be exact
// upper case (see Lookup). Checks run in this order and the first failure is
// returned: ErrUnknownCurrency (wrapped, with the code), ErrNotPositive, *RangeError.
func Validate(amount int64, code string) error {
	c, ok := Lookup(code)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	if amount <= 0 {
		return ErrNotPositive
	}
	if amount < c.Min || amount > c.Max {
		return &RangeError{Currency: c.Code, Min: c.Min, Max: c.Max, Amount: amount}
	}
	return nil
}

// Format renders an amount in minor units for messages and logs, e.g. "25.00 USD",
// "500 JPY", "1,234.50 EUR", so no caller divides by 100 by hand (wrong for JPY). It
// never fails: an unknown code is shown as the raw minor-unit count, marked as such,
// so a log line is never misleading about the amount.
func Format(amount int64, code string) string {
	c, ok := Lookup(code)
	if !ok {
		return fmt.Sprintf("%d minor units of unknown currency %q", amount, code)
	}
	return formatMinor(amount, c.Exponent) + " " + c.Code
}

// formatMinor renders amount (in minor units) with exponent decimal digits and a comma
// between groups of three integer digits. It works on the unsigned magnitude so that
// math.MinInt64 formats correctly.
func formatMinor(amount int64, exponent int) string {
	mag := uint64(amount)
	if amount < 0 {
		mag = -mag
	}
	pow := uint64(1)
	for range exponent {
		pow *= 10
	}
	whole := strconv.FormatUint(mag/pow, 10)

	var b strings.Builder
	if amount < 0 {
		b.WriteByte('-')
	}
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if exponent > 0 {
		frac := strconv.FormatUint(mag%pow, 10)
		b.WriteByte('.')
		b.WriteString(strings.Repeat("0", exponent-len(frac)))
		b.WriteString(frac)
	}
	return b.String()
}
