package models

import "github.com/google/uuid"

// ValidID reports whether s is an id as this API writes them: a UUID in its
// 36-character form (either case). Check an id with it before it meets a uuid
// column: uuid.Validate also accepts "urn:uuid:...", which PostgreSQL does not
// take, so such an id would fail the query (INTERNAL) instead of being unknown.
func ValidID(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }
