// Package config reads masqd's config: ip-masq-agent's format, as YAML or
// JSON, from one file or from every file of a directory (a ConfigMap mount).
//
// Load and Parse default, validate and normalise in one step and return a
// Config that callers treat as immutable: prefixes are netip.Prefix values,
// masked, IPv4 kept as IPv4. Nothing invalid gets through. A file that breaks
// the rules yields an *Error listing every problem at once, each with the
// file, line, column and field, and how to fix it, so one edit can fix them
// all.
//
// The rules follow ip-masq-agent where it has one (a missing or empty file
// means the defaults, a present nonMasqueradeCIDRs replaces them) and are
// stricter where ip-masq-agent was silent: unknown keys, duplicate keys,
// quoted booleans and numbers, host bits and IPv4-mapped prefixes are errors.
// Duplicate and overlapping CIDRs are accepted; nft.Build merges them.
//
// This package reads only the files it is given. It does not watch them, log,
// keep time or touch the kernel.
package config
