package api

// RoundDuration exposes roundDuration to the external tests.
var RoundDuration = roundDuration

// SetMaxDependents changes the dependents walk's stream bound until the
// returned function restores it.
func SetMaxDependents(n int) (restore func()) {
	old := maxDependents
	maxDependents = n
	return func() { maxDependents = old }
}
