package wire

// The encoding/xml decoder. DecodeCall and DecodeResponse first try the
// scanner in scan.go, which accepts only documents it can decode exactly as
// this code does, and fall back to this code for everything else (namespaced
// names, attributes, comments, DOCTYPE, other encodings, malformed input), so
// errors and rare forms keep their behaviour and messages. FuzzDecode checks
// the two agree.

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// xmlDecodeCall is DecodeCall on encoding/xml's tokenizer: the reference
// the fast scanner is checked against, and its fallback.
func xmlDecodeCall(body []byte) (method string, params []any, err error) {
	d := newDecoder(body)
	if err := d.expectStart("methodCall"); err != nil {
		return "", nil, err
	}
	params = []any{}
	for {
		tok, err := d.next()
		if err != nil {
			return "", nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "methodName":
				s, err := d.text()
				if err != nil {
					return "", nil, err
				}
				method = strings.TrimSpace(s)
			case "params":
				params, err = d.params()
				if err != nil {
					return "", nil, err
				}
			default:
				return "", nil, fmt.Errorf("unexpected <%s> in methodCall", t.Name.Local)
			}
		case xml.EndElement:
			if method == "" {
				return "", nil, errors.New("methodCall has no methodName")
			}
			return method, params, nil
		}
	}
}

// xmlDecodeResponse is DecodeResponse on encoding/xml's tokenizer.
func xmlDecodeResponse(body []byte) (any, *Fault, error) {
	d := newDecoder(body)
	if err := d.expectStart("methodResponse"); err != nil {
		return nil, nil, err
	}
	for {
		tok, err := d.next()
		if err != nil {
			return nil, nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "params":
				ps, err := d.params()
				if err != nil {
					return nil, nil, err
				}
				if len(ps) != 1 {
					return nil, nil, fmt.Errorf("methodResponse has %d params, want 1", len(ps))
				}
				return ps[0], nil, nil
			case "fault":
				if err := d.expectStart("value"); err != nil {
					return nil, nil, err
				}
				v, err := d.value()
				if err != nil {
					return nil, nil, err
				}
				f, ok := AsFault(v)
				if !ok {
					return nil, nil, errors.New("malformed fault")
				}
				return nil, f, nil
			default:
				return nil, nil, fmt.Errorf("unexpected <%s> in methodResponse", t.Name.Local)
			}
		case xml.EndElement:
			return nil, nil, errors.New("empty methodResponse")
		}
	}
}

type decoder struct {
	*xml.Decoder
	depth int
}

func newDecoder(body []byte) *decoder {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	return &decoder{Decoder: d}
}

// next returns the next start or end element, skipping text, comments and
// processing instructions.
func (d *decoder) next() (xml.Token, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch tok.(type) {
		case xml.StartElement, xml.EndElement:
			return tok, nil
		}
	}
}

func (d *decoder) expectStart(name string) error {
	tok, err := d.next()
	if err != nil {
		return err
	}
	if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != name {
		return fmt.Errorf("expected <%s>", name)
	}
	return nil
}

// text reads character data up to the end of the current element.
func (d *decoder) text() (string, error) {
	var s strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			s.Write(t)
		case xml.EndElement:
			return s.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s> in text", t.Name.Local)
		}
	}
}

func (d *decoder) params() ([]any, error) {
	ps := []any{}
	for {
		tok, err := d.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "param" {
				return nil, fmt.Errorf("unexpected <%s> in params", t.Name.Local)
			}
			if err := d.expectStart("value"); err != nil {
				return nil, err
			}
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			ps = append(ps, v)
			if tok, err := d.next(); err != nil {
				return nil, err
			} else if _, ok := tok.(xml.EndElement); !ok {
				return nil, errors.New("expected </param>")
			}
		case xml.EndElement:
			return ps, nil
		}
	}
}

// value decodes the content of a <value> element whose start was consumed,
// and consumes its end.
func (d *decoder) value() (any, error) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		return nil, errors.New("value nested too deeply")
	}
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			// <value>text</value> and <value/> are strings.
			return text.String(), nil
		case xml.StartElement:
			v, err := d.typed(t.Name.Local)
			if err != nil {
				return nil, err
			}
			// consume up to </value>
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, err
				}
				if _, ok := tok.(xml.EndElement); ok {
					return v, nil
				}
				if s, ok := tok.(xml.StartElement); ok {
					return nil, fmt.Errorf("unexpected <%s> after value", s.Name.Local)
				}
			}
		}
	}
}

func (d *decoder) typed(kind string) (any, error) {
	switch kind {
	case "nil":
		if _, err := d.text(); err != nil {
			return nil, err
		}
		return nil, nil
	case "int", "i4", "i8", "i1", "i2", "biginteger":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad <%s>: %w", kind, err)
		}
		return i, nil
	case "boolean":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("bad boolean %q", s)
	case "string":
		return d.text()
	case "double", "float":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("bad <%s>: %w", kind, err)
		}
		return f, nil
	case "dateTime.iso8601":
		s, err := d.text()
		return strings.TrimSpace(s), err
	case "base64":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("bad base64: %w", err)
		}
		return raw, nil
	case "array":
		if err := d.expectStart("data"); err != nil {
			return nil, err
		}
		out := []any{}
		for {
			tok, err := d.next()
			if err != nil {
				return nil, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if t.Name.Local != "value" {
					return nil, fmt.Errorf("unexpected <%s> in array", t.Name.Local)
				}
				v, err := d.value()
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			case xml.EndElement: // </data>
				if tok, err := d.next(); err != nil {
					return nil, err
				} else if _, ok := tok.(xml.EndElement); !ok {
					return nil, errors.New("expected </array>")
				}
				return out, nil
			}
		}
	case "struct":
		out := map[string]any{}
		for {
			tok, err := d.next()
			if err != nil {
				return nil, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if t.Name.Local != "member" {
					return nil, fmt.Errorf("unexpected <%s> in struct", t.Name.Local)
				}
				name, v, err := d.member()
				if err != nil {
					return nil, err
				}
				out[name] = v
			case xml.EndElement:
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown value type <%s>", kind)
}

func (d *decoder) member() (string, any, error) {
	var name string
	var val any
	seen := false
	for {
		tok, err := d.next()
		if err != nil {
			return "", nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "name":
				if name, err = d.text(); err != nil {
					return "", nil, err
				}
			case "value":
				if val, err = d.value(); err != nil {
					return "", nil, err
				}
				seen = true
			default:
				return "", nil, fmt.Errorf("unexpected <%s> in member", t.Name.Local)
			}
		case xml.EndElement:
			if !seen {
				return "", nil, fmt.Errorf("member %q has no value", name)
			}
			return name, val, nil
		}
	}
}
