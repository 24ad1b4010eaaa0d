//go:build race

package config

// raceEnabled relaxes timing budgets: the race detector slows everything.
const raceEnabled = true
