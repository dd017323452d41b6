package config

import (
	"errors"
	"strings"

	"github.com/scoville/scoville/sealing"
)

// dataEncryptionKeys checks DATA_ENCRYPTION_KEYS at start, so a bad value stops the
// process before it reads or writes any personal data. The message says what is wrong
// (sealing's errors never quote the value) and how to make a good one.
func (l *loader) dataEncryptionKeys(name string) Secret {
	v := l.get(name)
	if v == "" {
		if l.prod {
			l.fail(errors.New(name + " is required in production; print a value with `scoville keys generate`"))
		}
		return ""
	}
	k, err := sealing.Parse(v)
	if err != nil {
		reason := strings.TrimPrefix(strings.TrimPrefix(err.Error(), sealing.ErrMalformedKeys.Error()), ": ")
		l.failf(name, "is not a valid key set (%s); print one with `scoville keys generate`", reason)
		return ""
	}
	if l.prod && k.Development() {
		l.fail(errors.New(name + " is the public development key set, which production refuses; print a real one with `scoville keys generate`"))
		return ""
	}
	return Secret(v)
}
