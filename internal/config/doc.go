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
// The rules follow ip-masq-agent, which turned YAML into JSON (YAML 1.1)
// and decoded it with encoding/json: a missing or empty file means the
// defaults, and a present nonMasqueradeCIDRs replaces them. Whatever it
// accepted and applied is applied the same way, with a warning that names
// the spelling to use: keys in another case, YAML 1.1 booleans (yes, off),
// a key with no value, unknown keys, duplicate keys (the one it applied
// wins), and JSON it would have refused but YAML reads (a rollback to it
// would fail). What it refused stays an error: quoted booleans and
// numbers, bad CIDRs, host bits, IPv6 without --enable-ipv6; masqd also
// refuses IPv4-mapped prefixes, which never match. Options.Strict makes
// every warning an error. Duplicate and overlapping CIDRs are accepted;
// nft.Build merges them.
//
// This package reads only the files it is given. It does not watch them, log,
// keep time or touch the kernel.
package config
