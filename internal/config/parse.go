package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The keys of ip-masq-agent's config.
const (
	keyCIDRs             = "nonMasqueradeCIDRs"
	keyMasqLinkLocal     = "masqLinkLocal"
	keyMasqLinkLocalIPv6 = "masqLinkLocalIPv6"
	keyResyncInterval    = "resyncInterval"
	keyCIDRLimit         = "cidrLimit"
	// masqd's own keys, beyond ip-masq-agent's.
	keyMasqCIDRs   = "masqueradeCIDRs"
	keySourceCIDRs = "masqueradeSourceCIDRs"
)

var knownKeys = []string{keyCIDRs, keyMasqLinkLocal, keyMasqLinkLocalIPv6, keyResyncInterval, keyCIDRLimit, keyMasqCIDRs, keySourceCIDRs}

// minResyncInterval keeps a typo ("1ms") from turning the agent into a busy loop.
const minResyncInterval = 100 * time.Millisecond

var utf8BOM = []byte("\xef\xbb\xbf")

// Parse reads one file's content. file names it in problems and in
// Config.Files. Empty content, or only whitespace and comments, means the
// defaults. Invalid content yields an *Error.
func Parse(file string, data []byte, opts Options) (*Config, error) {
	r, problems := parseFile(file, data, opts)
	cfg, more := merge([]*fileResult{r}, opts)
	problems = append(problems, more...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfg, nil
}

// pos is a 1-based line and column in a file. int32 keeps a list entry
// small: a list may hold a hundred thousand.
type pos struct{ line, col int32 }

// kind is the type of a value, whichever format wrote it.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindInt
	kindFloat
	kindString
	kindList
	kindMap
)

func (k kind) String() string {
	return [...]string{"null", "a boolean", "a number", "a number", "a string", "a list", "a mapping"}[k]
}

// scalar is a parsed value, JSON's or YAML's, without its contents: text
// for a scalar (a boolean as "true" or "false"), just the kind for a list or
// a mapping. List entries are scalars.
type scalar struct {
	kind kind
	text string
	at   pos
}

// value is a field's value: a scalar, and a list's entries. The contents of
// deeper lists and mappings are not kept.
type value struct {
	scalar
	items []scalar
}

// field is one key of the top-level mapping.
type field struct {
	key string
	at  pos
	val value
}

// listResult is what one file sets for one CIDR list.
type listResult struct {
	cidrs []netip.Prefix
	lines []int32 // the line of each entry of cidrs
	has   bool
	count int // entries written, valid or not
	at    pos
}

// fileResult is what one file sets.
type fileResult struct {
	file string

	lists [numLists]listResult

	// warnings are problems that do not make the file invalid.
	warnings []Problem

	masqLinkLocal, masqLinkLocalIPv6 bool

	resync    time.Duration
	hasResync bool

	limit    int
	hasLimit bool
	limitAt  pos
}

// problems collects the problems of one file.
type problems struct {
	file    string
	list    []Problem
	dropped int
}

func (ps *problems) add(at pos, field, msg, fix string) {
	if len(ps.list) >= maxProblemsPerFile {
		ps.dropped++
		return
	}
	ps.list = append(ps.list, Problem{File: ps.file, Line: int(at.line), Column: int(at.col), Field: shown(field), Message: msg, Fix: fix})
}

// maxShown caps how much of a value a problem quotes: a file may hold a
// key or a string megabytes long, and a problem is read in a log line.
const maxShown = 80

// shown returns s cut to maxShown bytes at a character boundary, with "…"
// marking the cut.
func shown(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func (ps *problems) done() []Problem {
	if ps.dropped > 0 {
		ps.list = append(ps.list, Problem{File: ps.file, Message: fmt.Sprintf("%d more problems not shown", ps.dropped),
			Fix: "fix the ones above and check again"})
	}
	return ps.list
}

// parseFile decodes and validates one file.
func parseFile(file string, data []byte, opts Options) (*fileResult, []Problem) {
	ps := &problems{file: file}
	r := &fileResult{file: file}
	data = bytes.TrimPrefix(data, utf8BOM)
	r.validate(decode(data, ps), opts, ps)
	return r, ps.done()
}

// decode reads JSON with encoding/json, which is fast for long lists, and
// everything else as YAML.
func decode(data []byte, ps *problems) []field {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if !isJSON(data) {
		return decodeYAML(data, ps)
	}
	fields, syn := decodeJSON(data)
	if syn == nil {
		return fields
	}
	// A YAML flow mapping starts with "{" too, and ip-masq-agent read
	// everything as YAML, which also forgives JSON's trailing commas.
	yps := &problems{file: ps.file}
	if yfields := decodeYAML(data, yps); len(yps.list) == 0 {
		return yfields
	}
	ps.add(syn.at, "", syn.msg, syn.fix)
	return fields
}

// isJSON reports whether data is a JSON object: its first non-space byte is "{".
func isJSON(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

func (r *fileResult) validate(fields []field, opts Options, ps *problems) {
	seen := make(map[string]pos, len(fields))
	for _, f := range fields {
		if known := foldKey(f.key); known != "" && known != f.key {
			// ip-masq-agent decoded with encoding/json, which matches keys
			// in any case: read them, so that its configs still apply.
			r.warnings = append(r.warnings, Problem{File: r.file, Line: int(f.at.line), Column: int(f.at.col), Field: f.key,
				Message: fmt.Sprintf("read as %q, as ip-masq-agent did", known), Fix: fmt.Sprintf("write %q", known)})
			f.key = known
		}
		if first, dup := seen[f.key]; dup {
			ps.add(f.at, f.key, fmt.Sprintf("duplicate key (first at line %d, column %d)", first.line, first.col),
				"remove one of them")
			continue
		}
		seen[f.key] = f.at
		if f.val.kind == kindNull && isKnownKey(f.key) {
			ps.add(f.val.at, f.key, "has no value", noValueFix[f.key])
			continue
		}
		switch f.key {
		case keyCIDRs, keyMasqCIDRs, keySourceCIDRs:
			l := listOf(f.key)
			r.lists[l] = checkCIDRList(l, f.at, f.val, opts, ps)
		case keyMasqLinkLocal:
			r.masqLinkLocal = checkBool(f.key, f.val.scalar, ps)
		case keyMasqLinkLocalIPv6:
			r.masqLinkLocalIPv6 = checkBool(f.key, f.val.scalar, ps)
		case keyResyncInterval:
			r.resync, r.hasResync = checkDuration(f.key, f.val.scalar, ps)
		case keyCIDRLimit:
			r.limit, r.hasLimit = checkLimit(f.key, f.val.scalar, ps)
			r.limitAt = f.val.at
		default:
			ps.add(f.at, f.key, fmt.Sprintf("unknown key %q", shown(f.key)), unknownKeyFix(f.key))
		}
	}
	r.checkLists(ps)
}

// checkLists reports what no single list shows: a prefix both exempted and
// forced to masquerade in one file, and a source list that is set but empty.
func (r *fileResult) checkLists(ps *problems) {
	if src := r.lists[MasqueradeSource]; src.has && src.count == 0 {
		ps.add(src.at, keySourceCIDRs, "is empty, so nothing would be masqueraded",
			"list the pod CIDRs, or remove the key to consider every source")
	}
	masq := r.lists[Masquerade]
	if len(masq.cidrs) == 0 {
		return
	}
	nonMasq := r.lists[NonMasquerade]
	lineOf := make(map[netip.Prefix]int32, len(nonMasq.cidrs))
	for i, p := range nonMasq.cidrs {
		lineOf[p] = nonMasq.lines[i]
	}
	for i, p := range masq.cidrs {
		if line, dup := lineOf[p]; dup {
			ps.add(pos{line: masq.lines[i]}, keyMasqCIDRs, fmt.Sprintf("%s is also in nonMasqueradeCIDRs (line %d)", p, line),
				"keep it in one of the two lists")
		}
	}
}

// foldKey returns the known key that k equals but for case, or "".
func foldKey(k string) string {
	for _, known := range knownKeys {
		if strings.EqualFold(k, known) {
			return known
		}
	}
	return ""
}

func isKnownKey(k string) bool {
	for _, known := range knownKeys {
		if k == known {
			return true
		}
	}
	return false
}

var noValueFix = map[string]string{
	keyCIDRs:             `write a list such as ["10.0.0.0/8"], [] to masquerade everything, or remove the key for the defaults`,
	keyMasqCIDRs:         `write a list such as ["10.20.0.0/16"], or remove the key`,
	keySourceCIDRs:       `write a list such as ["10.244.0.0/16"], or remove the key`,
	keyMasqLinkLocal:     "write true or false, or remove the key",
	keyMasqLinkLocalIPv6: "write true or false, or remove the key",
	keyResyncInterval:    `write a duration such as "60s", or remove the key`,
	keyCIDRLimit:         "write a whole number (0 for no limit), or remove the key",
}

func checkCIDRList(l List, at pos, v value, opts Options, ps *problems) listResult {
	key := l.String()
	r := listResult{has: true, at: at}
	if v.kind != kindList {
		fix := `write a list such as ["10.0.0.0/8"]`
		if v.kind == kindString {
			fix = "write it as a list: " + quoteList(strings.Split(v.text, ","))
		}
		ps.add(v.at, key, "must be a list of CIDRs, not "+v.kind.String(), fix)
		return r
	}
	r.count = len(v.items)
	r.cidrs = make([]netip.Prefix, 0, len(v.items))
	r.lines = make([]int32, 0, len(v.items))
	for i, item := range v.items {
		if item.kind != kindString {
			ps.add(item.at, entryName(key, i), "must be a CIDR string, not "+item.kind.String(), `write a CIDR such as "10.0.0.0/8"`)
			continue
		}
		p, msg, fix := parseCIDR(item.text, opts)
		if msg != "" {
			ps.add(item.at, entryName(key, i), msg, fix)
			continue
		}
		r.cidrs = append(r.cidrs, p)
		r.lines = append(r.lines, item.at.line)
	}
	return r
}

// entryName names the i-th entry of a list in problems.
func entryName(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

// quoteList renders ss as a flow list of quoted strings, valid in both YAML
// and JSON, or its first entries and "…" when ss is long.
func quoteList(ss []string) string {
	const maxEntries = 8
	quoted := make([]string, 0, min(len(ss), maxEntries+1))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if len(quoted) == maxEntries || len(s) > maxShown {
			quoted = append(quoted, "…")
			break
		}
		quoted = append(quoted, strconv.Quote(s))
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func checkBool(key string, v scalar, ps *problems) bool {
	switch v.kind {
	case kindBool:
		return v.text == "true"
	case kindString:
		fix := "write true or false"
		switch strings.ToLower(v.text) {
		case "true", "false":
			fix = "write " + strings.ToLower(v.text) + " without quotes"
		case "yes", "y", "on", "1":
			fix = "write true"
		case "no", "n", "off", "0":
			fix = "write false"
		}
		ps.add(v.at, key, fmt.Sprintf("must be true or false, not the string %q", shown(v.text)), fix)
	default:
		ps.add(v.at, key, "must be true or false, not "+v.kind.String(), "write true or false")
	}
	return false
}

func checkDuration(key string, v scalar, ps *problems) (time.Duration, bool) {
	const fix = `write a duration such as "60s" or "500ms"`
	switch v.kind {
	case kindString:
	case kindInt, kindFloat:
		ps.add(v.at, key, "must be a duration with a unit, not a number", inSeconds(v.text, fix))
		return 0, false
	default:
		ps.add(v.at, key, "must be a duration, not "+v.kind.String(), fix)
		return 0, false
	}
	d, err := time.ParseDuration(v.text)
	switch {
	case err != nil:
		f := fix
		if _, numErr := strconv.ParseFloat(v.text, 64); numErr == nil {
			f = inSeconds(v.text, fix)
		}
		ps.add(v.at, key, fmt.Sprintf("%q is not a duration", shown(v.text)), f)
	case d <= 0:
		ps.add(v.at, key, fmt.Sprintf("%q is not positive", shown(v.text)), fix)
	case d < minResyncInterval:
		ps.add(v.at, key, fmt.Sprintf("%q is below the minimum of %s", shown(v.text), minResyncInterval),
			fmt.Sprintf("use %s or more; the default is %s", minResyncInterval, formatDuration(DefaultResyncInterval)))
	default:
		return d, true
	}
	return 0, false
}

// inSeconds suggests reading the number text as seconds, if that makes a
// valid resyncInterval, and returns fallback if it does not.
func inSeconds(text, fallback string) string {
	d, err := time.ParseDuration(text + "s")
	if err != nil || d < minResyncInterval {
		return fallback
	}
	return fmt.Sprintf("write %q", formatDuration(d))
}

func checkLimit(key string, v scalar, ps *problems) (int, bool) {
	const fix = "write a whole number such as 64, or 0 for no limit"
	switch v.kind {
	case kindInt:
		n, err := strconv.Atoi(v.text)
		switch {
		case err != nil:
			ps.add(v.at, key, shown(v.text)+" is out of range", fix)
		case n < 0:
			ps.add(v.at, key, shown(v.text)+" is negative", "use 0 for no limit, or a positive number")
		default:
			return n, true
		}
	case kindFloat:
		f := fix
		if n, err := strconv.ParseFloat(v.text, 64); err == nil && n == float64(int64(n)) && n >= 0 {
			f = "write " + strconv.FormatInt(int64(n), 10)
		}
		ps.add(v.at, key, shown(v.text)+" is not a whole number", f)
	case kindString:
		f := fix
		if n, err := strconv.Atoi(strings.TrimSpace(v.text)); err == nil && n >= 0 {
			f = "write " + strconv.Itoa(n) + " without quotes"
		}
		ps.add(v.at, key, fmt.Sprintf("must be a number, not the string %q", shown(v.text)), f)
	default:
		ps.add(v.at, key, "must be a number, not "+v.kind.String(), fix)
	}
	return 0, false
}

// merge combines what the files set, in file order: CIDR lists are joined
// (the defaults apply only if no file sets the key), booleans ORed, the
// shortest resyncInterval and the smallest non-zero cidrLimit win. The limit
// applies to the joined list.
func merge(results []*fileResult, opts Options) (*Config, []Problem) {
	cfg := Default(opts)
	var (
		lists    [numLists][]netip.Prefix
		hasCIDRs bool
		count    int
		setters  []*fileResult
		limitBy  *fileResult
		resync   time.Duration
	)
	for _, r := range results {
		cfg.Files = append(cfg.Files, r.file)
		cfg.warnings = append(cfg.warnings, r.warnings...)
		for l := range numLists {
			lr := r.lists[l]
			if len(lr.cidrs) > 0 {
				cfg.sources[l] = append(cfg.sources[l], run{file: r.file, start: len(lists[l]), lines: lr.lines})
			}
			if lists[l] == nil {
				lists[l] = lr.cidrs // r is done with: reuse, and with one file, do not copy
			} else {
				lists[l] = append(lists[l], lr.cidrs...)
			}
		}
		if r.lists[NonMasquerade].has {
			hasCIDRs = true
			count += r.lists[NonMasquerade].count
			setters = append(setters, r)
		}
		cfg.MasqLinkLocal = cfg.MasqLinkLocal || r.masqLinkLocal
		cfg.MasqLinkLocalIPv6 = cfg.MasqLinkLocalIPv6 || r.masqLinkLocalIPv6
		if r.hasResync && (resync == 0 || r.resync < resync) {
			resync = r.resync
		}
		if r.hasLimit && r.limit > 0 && (limitBy == nil || r.limit < limitBy.limit) {
			limitBy = r
		}
	}
	if resync > 0 {
		cfg.ResyncInterval = resync
	}
	cfg.MasqueradeCIDRs, cfg.MasqueradeSourceCIDRs = lists[Masquerade], lists[MasqueradeSource]
	if src, all := cfg.MasqueradeSources(true); opts.EnableIPv6 && !all && len(src) == 0 {
		at := cfg.Source(MasqueradeSource, 0)
		cfg.warnings = append(cfg.warnings, Problem{File: at.File, Line: at.Line, Field: keySourceCIDRs,
			Message: "lists no IPv6 source, so no IPv6 traffic is masqueraded although --enable-ipv6 is set",
			Fix:     "add the IPv6 pod CIDRs"})
	}
	if hasCIDRs {
		if lists[NonMasquerade] == nil {
			lists[NonMasquerade] = []netip.Prefix{}
		}
		cfg.NonMasqueradeCIDRs = lists[NonMasquerade]
	} else {
		count = len(cfg.NonMasqueradeCIDRs)
	}
	if limitBy == nil {
		return cfg, nil
	}
	cfg.CIDRLimit = limitBy.limit
	if count <= limitBy.limit {
		return cfg, nil
	}
	const fix = "raise cidrLimit or remove entries"
	p := Problem{File: limitBy.file, Line: int(limitBy.limitAt.line), Column: int(limitBy.limitAt.col), Field: keyCIDRLimit, Fix: fix}
	switch {
	case len(setters) == 1 && setters[0] == limitBy:
		at := limitBy.lists[NonMasquerade].at
		p.Line, p.Column, p.Field = int(at.line), int(at.col), keyCIDRs
		p.Message = fmt.Sprintf("%d entries, over the cidrLimit of %d", count, limitBy.limit)
	case !hasCIDRs:
		p.Message = fmt.Sprintf("the default nonMasqueradeCIDRs have %d entries, over this limit of %d", count, limitBy.limit)
	default:
		p.Message = fmt.Sprintf("%d files have %d nonMasqueradeCIDRs entries in all, over this limit of %d", len(setters), count, limitBy.limit)
	}
	return cfg, []Problem{p}
}
