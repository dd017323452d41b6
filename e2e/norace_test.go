//go:build !race

package e2e

// raceEnabled is whether the tests run with the race detector; the command they
// build then has it too.
const raceEnabled = false
