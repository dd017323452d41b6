package audit

import (
	"fmt"
	"strings"

	"github.com/scoville/scoville/models"
)

// MaxReasonLen bounds the reason staff give for a manual action, in bytes.
const MaxReasonLen = 1000

// Reason checks the reason staff must give for every audited manual action (OPS-4):
// it returns the reason trimmed of surrounding space, or an INVALID user error at
// field when it is empty, longer than MaxReasonLen, or holds a NUL character (which
// PostgreSQL cannot store: the audit entry would fail).
func Reason(reason string, field ...string) (string, error) {
	r := strings.TrimSpace(reason)
	switch {
	case r == "":
		return "", models.NewUserError(models.UserErrorInvalid, "a reason is required", field...)
	case len(r) > MaxReasonLen:
		return "", models.NewUserError(models.UserErrorInvalid, fmt.Sprintf("must be at most %d characters", MaxReasonLen), field...)
	case strings.ContainsRune(r, 0):
		return "", models.NewUserError(models.UserErrorInvalid, "must not contain a NUL character", field...)
	}
	return r, nil
}
