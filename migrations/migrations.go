// Package migrations holds the database schema as numbered goose SQL files, embedded
// in the binary so that the schema a binary expects always travels with it.
package migrations

import "embed"

// FS is the ordered set of migrations; database.Migrate applies it.
//
//go:embed *.sql
var FS embed.FS
