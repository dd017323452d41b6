// Package models holds the types that are both persisted (gorm) and bound to the
// GraphQL schema (gqlgen autobind), so one definition serves storage and API.
package models
