package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeJSON walks a JSON object token by token, so that every key and value
// keeps its line and column. It returns the object's fields, up to the
// syntax error if there is one.
func decodeJSON(data []byte) ([]field, *syntaxError) {
	w := &jsonWalker{data: data, dec: json.NewDecoder(bytes.NewReader(data)), line: 1, col: 1}
	w.dec.UseNumber()
	fields, err := w.object()
	if err != nil {
		return fields, w.syntaxError(err)
	}
	return fields, w.end()
}

// syntaxError is where and why a file cannot be parsed.
type syntaxError struct {
	at       pos
	msg, fix string
}

// jsonWalker reads tokens and tracks the line and column of an offset. It
// only moves forward, so positions cost O(size of the file) in all.
type jsonWalker struct {
	data []byte
	dec  *json.Decoder

	off, line, col int
}

// pos returns the line and column of off, which must not be before the last
// offset asked for.
func (w *jsonWalker) pos(off int) pos {
	off = min(max(off, w.off), len(w.data))
	seg := w.data[w.off:off]
	if i := bytes.LastIndexByte(seg, '\n'); i >= 0 {
		w.line += bytes.Count(seg, []byte{'\n'})
		w.col = 1 + utf8.RuneCount(seg[i+1:])
	} else {
		w.col += utf8.RuneCount(seg)
	}
	w.off = off
	return pos{int32(w.line), int32(w.col)}
}

// next returns the next token and where it starts.
func (w *jsonWalker) next() (json.Token, pos, error) {
	off := w.skipSpace()
	tok, err := w.dec.Token()
	return tok, w.pos(off), err
}

func (w *jsonWalker) object() ([]field, error) {
	tok, _, err := w.next()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("expected a JSON object")
	}
	var fields []field
	for {
		tok, at, err := w.next()
		if err != nil {
			return fields, err
		}
		if tok == json.Delim('}') {
			return fields, nil
		}
		key, _ := tok.(string)
		var val value
		if off := w.skipSpace(); off < len(w.data) && w.data[off] == '[' {
			val, err = w.list(off)
		} else {
			var vtok json.Token
			var vat pos
			if vtok, vat, err = w.next(); err == nil {
				val, err = w.value(vtok, vat)
			}
		}
		if err != nil {
			return fields, err
		}
		fields = append(fields, field{key: key, at: at, val: val})
	}
}

// list reads the list that starts at off in one Decode call, far faster
// than a token per entry, then splits the entries out of the raw text, which
// encoding/json has checked.
func (w *jsonWalker) list(off int) (value, error) {
	v := value{scalar: scalar{kind: kindList, at: w.pos(off)}}
	var raw rawText
	if err := w.dec.Decode(&raw); err != nil {
		return v, err
	}
	text := string(raw)
	v.items = make([]scalar, 0, strings.Count(text, ",")+1)
	for i := 1; ; {
		i += strings.IndexFunc(text[i:], isNotSeparator)
		if text[i] == ']' {
			return v, nil
		}
		end := i + jsonValueLen(text[i:])
		item := scalar{text: text[i:end], at: w.pos(off + i)}
		switch c := text[i]; {
		case c == '"':
			item.kind = kindString
			item.text = item.text[1 : len(item.text)-1]
			if strings.IndexByte(item.text, '\\') >= 0 {
				unquoted, err := unquote(text[i:end])
				if err != nil {
					return v, err
				}
				item.text = unquoted
			}
		case c == '[':
			item.kind, item.text = kindList, ""
		case c == '{':
			item.kind, item.text = kindMap, ""
		case c == 't' || c == 'f':
			item.kind = kindBool
		case c == 'n':
			item.kind, item.text = kindNull, ""
		default:
			item.kind = numberKind(json.Number(item.text))
		}
		v.items = append(v.items, item)
		i = end
	}
}

// rawText is a JSON value's text, copied once from the decoder's buffer.
type rawText string

// UnmarshalJSON implements json.Unmarshaler.
func (r *rawText) UnmarshalJSON(b []byte) error {
	*r = rawText(b)
	return nil
}

// unquote decodes a JSON string with escapes.
func unquote(quoted string) (string, error) {
	var s string
	err := json.Unmarshal([]byte(quoted), &s)
	return s, err
}

func isNotSeparator(r rune) bool {
	return r != ' ' && r != '\t' && r != '\r' && r != '\n' && r != ','
}

// jsonValueLen returns the length of the valid JSON value that starts s.
func jsonValueLen(s string) int {
	switch s[0] {
	case '"':
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
	case '[', '{':
		depth := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '"':
				i += jsonValueLen(s[i:]) - 1
			case '[', '{':
				depth++
			case ']', '}':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	default:
		if i := strings.IndexAny(s, ",]} \t\r\n"); i >= 0 {
			return i
		}
	}
	return len(s)
}

// numberKind tells whole numbers from the others; a whole number too large
// for int64 stays kindInt so that it is reported as out of range.
func numberKind(n json.Number) kind {
	if _, err := n.Int64(); err == nil || !strings.ContainsAny(string(n), ".eE") {
		return kindInt
	}
	return kindFloat
}

// skipSpace returns the offset of the next token: the decoder's offset is the
// end of the previous one, and spaces and separators lie in between.
func (w *jsonWalker) skipSpace() int {
	off := int(w.dec.InputOffset())
	for off < len(w.data) {
		switch w.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

// value converts the token tok, read at at, and skips the rest of the value
// if it is a list or an object.
func (w *jsonWalker) value(tok json.Token, at pos) (value, error) {
	v := value{scalar: scalar{at: at}}
	switch t := tok.(type) {
	case nil:
		v.kind = kindNull
	case bool:
		v.kind, v.text = kindBool, strconv.FormatBool(t)
	case json.Number:
		v.kind, v.text = numberKind(t), string(t)
	case string:
		v.kind, v.text = kindString, t
	case json.Delim:
		v.kind = kindList
		if t == '{' {
			v.kind = kindMap
		}
		return v, w.skip()
	default:
		return v, fmt.Errorf("unexpected JSON token %v", tok)
	}
	return v, nil
}

// skip reads up to the end of the list or object just opened.
func (w *jsonWalker) skip() error {
	for depth := 1; depth > 0; {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// end checks that nothing but spaces follows the object.
func (w *jsonWalker) end() *syntaxError {
	_, err := w.dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		err = errors.New("unexpected data after the JSON object")
	}
	return w.syntaxError(err)
}

// syntaxError explains why the walk stopped. The offsets in the decoder's
// errors count from different places depending on where it failed, so the
// error is found again by json.Unmarshal, which checks the whole input first
// and counts from its start.
func (w *jsonWalker) syntaxError(walkErr error) *syntaxError {
	var syn *json.SyntaxError
	if !errors.As(json.Unmarshal(w.data, new(rawText)), &syn) {
		return &syntaxError{msg: "invalid JSON: " + walkErr.Error(), fix: "correct the JSON syntax"}
	}
	if syn.Offset >= int64(len(w.data)) {
		return &syntaxError{position(w.data, len(w.data)), "invalid JSON: unexpected end of file", "close every { and ["}
	}
	return &syntaxError{position(w.data, int(syn.Offset)-1), "invalid JSON: " + syn.Error(), "correct the JSON syntax"}
}

// position finds the line and column of off from the start of data.
func position(data []byte, off int) pos {
	w := jsonWalker{data: data, line: 1, col: 1}
	return w.pos(off)
}
