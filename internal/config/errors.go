package config

import (
	"errors"
	"fmt"
	"strings"
)

// Problem is one thing wrong with a config file. Line and Column are 1-based
// and 0 when unknown; Field names the key, or the list entry as
// "nonMasqueradeCIDRs[2]", and is empty for syntax errors.
type Problem struct {
	File         string
	Line, Column int
	Field        string
	Message      string
	Fix          string
}

// String renders p as "FILE:LINE:COL: FIELD: MESSAGE (fix: FIX)", leaving out
// the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, "%d:", p.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString(" (fix: ")
		b.WriteString(p.Fix)
		b.WriteString(")")
	}
	return b.String()
}

// Error is an invalid config: every problem found in every file read.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Report is the text form of e for the config named name: one problem a
// line, then their count.
func (e *Error) Report(name string) string {
	var b strings.Builder
	for _, p := range e.Problems {
		b.WriteString(p.String() + "\n")
	}
	fmt.Fprintf(&b, "%d problem(s) in %s\n", len(e.Problems), name)
	return b.String()
}

// ErrTooLarge is returned, wrapped with the file's name, for a config file
// larger than MaxFileSize.
var ErrTooLarge = fmt.Errorf("file is larger than the %d MiB cap", MaxFileSize>>20)

// ErrNotRegular is returned, wrapped with the path, when a config directory
// holds something other than a regular file (or a symlink to one) under a
// name that does not start with ".".
var ErrNotRegular = errors.New("not a regular file; a config directory may hold only files (names starting with \".\" are skipped)")

// MaxFileSize caps the size of one config file, and with it the memory a
// load takes: parsing keeps every entry with its position, about 0.35 KiB
// per YAML list entry at peak (an 8 MiB list of 420,000 /32s peaks at
// 155 MiB, JSON at about 60%). 24 MiB holds 1,000,000 distinct /28s in
// JSON (18.6 MiB); `masqd --once` applied that in a peak of 460 MiB, where
// `nft -f` of the same ruleset took 730 MiB.
const MaxFileSize = 24 << 20

// maxProblemsPerFile keeps an error readable when a file is wrong
// throughout; the rest are counted in one last problem.
const maxProblemsPerFile = 100
