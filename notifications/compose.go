package notifications

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// signature closes every message.
const signature = "The Scoville team"

// facts is a notification's data, checked and ready to print.
type facts struct {
	plan, change, amount, url         string
	nextAttempt, periodEnd, resumesAt time.Time
}

// messages renders each kind: a subject and the paragraphs of the body.
var messages = map[Kind]func(f facts) (string, []string){
	KindSubscriptionStarted: func(f facts) (string, []string) {
		return "Your subscription has started", lines(
			"Thanks for subscribing! "+capital(f.subscription())+" is now active.",
			f.change,
			when(f.periodEnd, "Your current billing period runs until "+day(f.periodEnd)+"."),
			"You can see and change your subscription any time in your account.",
		)
	},
	KindSubscriptionChanged: func(f facts) (string, []string) {
		return "Your subscription has been updated", lines(
			"We've updated "+f.subscription()+".",
			f.change,
			when(f.periodEnd, "Your current billing period ends on "+day(f.periodEnd)+"."),
			"You can see the details in your account.",
		)
	},
	KindSubscriptionPaused: func(f facts) (string, []string) {
		resume := "You can resume it any time in your account."
		if !f.resumesAt.IsZero() {
			resume = "It will resume automatically on " + day(f.resumesAt) + ", or earlier if you resume it in your account."
		}
		return "Your subscription is paused", lines(
			capital(f.subscription())+" is paused: you won't be charged and no boxes will ship while it is paused.",
			f.change,
			resume,
		)
	},
	KindSubscriptionResumed: func(f facts) (string, []string) {
		return "Your subscription is active again", lines(
			"Welcome back! "+capital(f.subscription())+" is active again.",
			f.change,
			when(f.periodEnd, "Your current billing period runs until "+day(f.periodEnd)+"."),
		)
	},
	KindSubscriptionCanceled: func(f facts) (string, []string) {
		return "Your subscription has been canceled", lines(
			capital(f.subscription())+" has been canceled, and you won't be charged for it again.",
			f.change,
			"We're sorry to see you go. You're welcome back any time.",
		)
	},
	KindPaymentSucceeded: func(f facts) (string, []string) {
		return "Payment received" + prefixed(": ", f.amount), lines(
			"Thank you! We received your payment"+prefixed(" of ", f.amount)+" for "+f.subscription()+".",
			when(f.periodEnd, "You're all set until "+day(f.periodEnd)+"."),
			prefixed("Your receipt: ", f.url),
		)
	},
	KindPaymentFailed: func(f facts) (string, []string) {
		fix := "To keep your subscription, please update your payment method in your account."
		if f.url != "" {
			fix = "To keep your subscription, please pay or update your payment method here:\n" + f.url
		}
		retry := "We won't try this payment again automatically, so please act soon."
		if !f.nextAttempt.IsZero() {
			retry = "We'll try the payment again automatically on " + moment(f.nextAttempt) + ". If you update your payment method before then, we'll use the new one."
		}
		return "Action needed: your payment didn't go through", lines(
			"We couldn't take your payment"+prefixed(" of ", f.amount)+" for "+f.subscription()+". "+
				"This usually means the card has expired or been replaced, or the bank declined the charge.",
			fix,
			retry,
		)
	},
	KindPaymentActionRequired: func(f facts) (string, []string) {
		confirm := "Please sign in to your account to confirm it."
		if f.url != "" {
			confirm = "Please confirm it here:\n" + f.url
		}
		return "Action needed: confirm your payment", lines(
			"Your bank asks you to confirm your payment"+prefixed(" of ", f.amount)+" for "+f.subscription()+". "+
				"This is a security check (often called 3-D Secure) and only takes a moment.",
			confirm,
			"Until you confirm it, the payment stays pending.",
			when(f.nextAttempt, "We'll try the payment again on "+moment(f.nextAttempt)+"."),
		)
	},
	KindPaymentRefunded: func(f facts) (string, []string) {
		what := "your payment"
		if f.amount != "" {
			what = f.amount
		}
		return "Refund issued" + prefixed(": ", f.amount), lines(
			"We've refunded "+what+" for "+f.subscription()+".",
			"Depending on your bank, it can take 5 to 10 business days to show on your statement.",
			prefixed("Details: ", f.url),
		)
	},
}

// Compose renders the subject and plain-text body of a notification of kind. Data
// keys it does not use are ignored; a time that is not RFC 3339 or a URL that is not
// an absolute http(s) URL is an error, as is an unknown kind. Values are flattened to
// one line, so the subject is always a valid header value.
func Compose(kind Kind, data map[string]string) (subject, text string, err error) {
	render, ok := messages[kind]
	if !ok {
		return "", "", fmt.Errorf("notifications: unknown kind %q", kind)
	}
	f, err := readFacts(data)
	if err != nil {
		return "", "", fmt.Errorf("notifications: %s: %w", kind, err)
	}
	subject, paragraphs := render(f)
	return subject, "Hello,\n\n" + strings.Join(paragraphs, "\n\n") + "\n\n" + signature + "\n", nil
}

func readFacts(data map[string]string) (facts, error) {
	f := facts{
		plan:   oneLine(data[DataPlan]),
		change: oneLine(data[DataChange]),
		amount: oneLine(data[DataAmount]),
	}
	if raw := strings.TrimSpace(data[DataURL]); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || raw != oneLine(raw) {
			return facts{}, fmt.Errorf("data %q is not an absolute http(s) URL", DataURL)
		}
		f.url = raw
	}
	times := []struct {
		key string
		dst *time.Time
	}{{DataNextAttempt, &f.nextAttempt}, {DataPeriodEnd, &f.periodEnd}, {DataResumesAt, &f.resumesAt}}
	for _, t := range times {
		raw := strings.TrimSpace(data[t.key])
		if raw == "" {
			continue
		}
		parsed, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return facts{}, fmt.Errorf("data %q is not an RFC 3339 time", t.key)
		}
		*t.dst = parsed
	}
	return f, nil
}

// subscription names the subscription, with its plan when known.
func (f facts) subscription() string {
	if f.plan == "" {
		return "your subscription"
	}
	return "your subscription (" + f.plan + ")"
}

// oneLine turns control characters, line breaks included, into single spaces.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// lines drops the empty paragraphs, those whose data was not given.
func lines(paragraphs ...string) []string {
	out := paragraphs[:0]
	for _, p := range paragraphs {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func when(t time.Time, s string) string {
	if t.IsZero() {
		return ""
	}
	return s
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// day and moment print times in UTC: the customer's time zone is not known.
func day(t time.Time) string { return t.UTC().Format("Monday, January 2, 2006") }

func moment(t time.Time) string { return t.UTC().Format("January 2, 2006 at 15:04 UTC") }
