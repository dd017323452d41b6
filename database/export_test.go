package database

// NewGormLogger lets the external tests build gorm's logger with a chosen slow-query
// threshold.
var NewGormLogger = newGormLogger
