package api

// RoundDuration exposes roundDuration to the external tests.
var RoundDuration = roundDuration
