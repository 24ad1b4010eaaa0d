package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decodeYAML parses data as one YAML document into a yaml.Node tree, which
// keeps every line and column, and returns its top-level fields. An empty
// document has none.
//
// Aliases are followed one level, where a value or a list entry is expected,
// and never into the contents of a deeper list or mapping, so an alias bomb
// costs no more than its own text.
func decodeYAML(data []byte, ps *problems) []field {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			at, msg, fix := yamlSyntax(data, err)
			ps.add(at, "", msg, fix)
		}
		return nil
	}
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			at, msg, fix := yamlSyntax(data, err)
			ps.add(at, "", msg, fix)
			return nil
		}
		if root := docRoot(&more); root != nil {
			ps.add(nodePos(root), "", "a second YAML document", `keep one document in a file: remove the "---" before this one, or move it to a file of its own`)
			break
		}
	}
	root := docRoot(&doc)
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		ps.add(nodePos(root), "", "the config must be a mapping of keys to values, not "+yamlScalar(root).kind.String(),
			"start with a key, such as nonMasqueradeCIDRs:")
		return nil
	}
	fields := make([]field, 0, len(root.Content)/2)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), root.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			ps.add(nodePos(root.Content[i]), "", "a key must be a string", "remove it; the keys are "+strings.Join(knownKeys, ", "))
			continue
		case k.ShortTag() == "!!merge":
			ps.add(nodePos(root.Content[i]), "", "merge keys (<<) are not supported", "write the keys out")
			continue
		}
		fields = append(fields, field{key: k.Value, at: nodePos(root.Content[i]), val: yamlValue(v)})
	}
	return fields
}

// docRoot returns the content of a document node, nil when it is empty.
func docRoot(doc *yaml.Node) *yaml.Node {
	if len(doc.Content) == 0 {
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	return root
}

func nodePos(n *yaml.Node) pos { return pos{int32(n.Line), int32(n.Column)} }

// resolve follows an alias to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// yamlValue converts n, placed where n is written even if it is an alias,
// with a list's entries.
func yamlValue(n *yaml.Node) value {
	v := value{scalar: yamlScalar(n)}
	if n = resolve(n); n.Kind == yaml.SequenceNode {
		v.items = make([]scalar, len(n.Content))
		for i, item := range n.Content {
			v.items[i] = yamlScalar(item)
		}
	}
	return v
}

// yamlScalar converts n, placed where n is written even if it is an alias,
// without its contents.
func yamlScalar(n *yaml.Node) scalar {
	v := scalar{at: nodePos(n)}
	n = resolve(n)
	switch n.Kind {
	case yaml.SequenceNode:
		v.kind = kindList
		return v
	case yaml.MappingNode:
		v.kind = kindMap
		return v
	}
	v.kind, v.text = kindString, n.Value
	v.plain = n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
	switch n.ShortTag() {
	case "!!null":
		v.kind = kindNull
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			v.kind, v.text = kindBool, strconv.FormatBool(b)
		}
	case "!!int":
		v.kind = kindInt
		var i int64
		if n.Decode(&i) == nil {
			v.text = strconv.FormatInt(i, 10)
		}
	case "!!float":
		v.kind = kindFloat
		if wholeNumber.MatchString(n.Value) {
			v.kind = kindInt // too large for yaml.v3's int64: reported as out of range
		}
	}
	return v
}

var wholeNumber = regexp.MustCompile(`^[-+]?[0-9]+$`)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlSyntax explains a parse error. yaml.v3 gives a line at most, and its
// messages about a tab or a byte that is not text are obscure, so a tab in
// an indentation, or a byte YAML does not allow, is found here.
func yamlSyntax(data []byte, err error) (pos, string, string) {
	if at, msg, ok := notText(data); ok {
		return at, msg, "a config is UTF-8 text: check that this is the right file, and save it as UTF-8 without control characters"
	}
	i := 0
	for line := range bytes.Lines(data) {
		i++
		rest := bytes.TrimLeft(line, " \t")
		indent := line[:len(line)-len(rest)]
		if tab := bytes.IndexByte(indent, '\t'); tab >= 0 && len(bytes.TrimSpace(rest)) > 0 && rest[0] != '#' {
			return pos{int32(i), int32(tab + 1)}, "a tab in the indentation", "indent with spaces; YAML does not allow tabs there"
		}
	}
	var at pos
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		at.line = int32(line)
		msg = m[2]
	}
	fix := "correct the YAML syntax"
	if strings.Contains(msg, "mapping values are not allowed") {
		fix = `quote a value that contains ": "`
	}
	return at, "invalid YAML: " + msg, fix
}

// notText finds the first byte of data that is not valid UTF-8, or the
// first character YAML does not allow in a file (control characters other
// than tab, line feed and carriage return, surrogates, U+FFFE, U+FFFF).
func notText(data []byte) (pos, string, bool) {
	line, lineStart := 1, 0
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		var msg string
		switch {
		case r == utf8.RuneError && size == 1:
			msg = fmt.Sprintf("byte 0x%02x is not UTF-8 text", data[off])
		case !yamlPrintable(r):
			msg = fmt.Sprintf("control character %U is not text", r)
		}
		if msg != "" {
			return pos{int32(line), int32(1 + utf8.RuneCount(data[lineStart:off]))}, msg, true
		}
		if r == '\n' {
			line, lineStart = line+1, off+1
		}
		off += size
	}
	return pos{}, "", false
}

// yamlPrintable reports whether YAML allows r in a file.
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r', r == 0x85:
		return true
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return false
	case r >= 0xd800 && r < 0xe000, r == 0xfffe, r == 0xffff:
		return false
	}
	return true
}
