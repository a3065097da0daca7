//! The Go decoder: `json.NewDecoder(r).Decode` (first value, trailing bytes ignored, empty input
//! is `io.EOF`) and `json.Unmarshal` (exactly one value). Strings are unescaped as Go does:
//! invalid UTF-8 and lone surrogates become U+FFFD, raw control characters are syntax errors.
//! Nesting is capped at Go's 10 000 levels, which also bounds the recursion.

use super::{DecodeError, GoValue};

/// `json.NewDecoder(bytes).Decode(&v)`: the first value; trailing bytes are ignored.
pub(crate) fn decode_first(input: &[u8]) -> Result<GoValue, DecodeError> {
    let mut p = Parser {
        b: input,
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.i >= p.b.len() {
        return Err(DecodeError::Eof);
    }
    p.value()
}

/// `json.Unmarshal(bytes, &v)`: exactly one value, surrounded only by whitespace.
pub(crate) fn unmarshal(input: &[u8]) -> Result<GoValue, DecodeError> {
    let mut p = Parser {
        b: input,
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.i >= p.b.len() {
        return Err(DecodeError::Syntax("unexpected end of JSON input".into()));
    }
    let v = p.value()?;
    p.ws();
    if p.i < p.b.len() {
        return Err(p.err("after top-level value"));
    }
    Ok(v)
}

/// Go's nesting limit (`maxNestingDepth`), which also keeps recursion bounded here.
const MAX_DEPTH: usize = 10_000;

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> DecodeError {
        match self.b.get(self.i) {
            Some(c) => DecodeError::Syntax(format!("invalid character {:?} {what}", *c as char)),
            None => DecodeError::Syntax("unexpected EOF".into()),
        }
    }
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn lit(&mut self, word: &str, v: GoValue) -> Result<GoValue, DecodeError> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("in literal"))
        }
    }
    fn value(&mut self) -> Result<GoValue, DecodeError> {
        self.ws();
        match self.b.get(self.i) {
            None => Err(self.err("")),
            Some(b'n') => self.lit("null", GoValue::Null),
            Some(b't') => self.lit("true", GoValue::Bool(true)),
            Some(b'f') => self.lit("false", GoValue::Bool(false)),
            Some(b'"') => self.string().map(GoValue::String),
            Some(b'-' | b'0'..=b'9') => self.number().map(GoValue::Number),
            Some(b'[') => self.nested(|p| {
                let mut items = Vec::new();
                p.ws();
                if p.b.get(p.i) == Some(&b']') {
                    p.i += 1;
                    return Ok(GoValue::Array(items));
                }
                loop {
                    items.push(p.value()?);
                    p.ws();
                    match p.b.get(p.i) {
                        Some(b',') => p.i += 1,
                        Some(b']') => {
                            p.i += 1;
                            return Ok(GoValue::Array(items));
                        }
                        _ => return Err(p.err("after array element")),
                    }
                }
            }),
            Some(b'{') => self.nested(|p| {
                let mut pairs = Vec::new();
                p.ws();
                if p.b.get(p.i) == Some(&b'}') {
                    p.i += 1;
                    return Ok(GoValue::Map(pairs));
                }
                loop {
                    p.ws();
                    if p.b.get(p.i) != Some(&b'"') {
                        return Err(p.err("looking for beginning of object key string"));
                    }
                    let k = p.string()?;
                    p.ws();
                    if p.b.get(p.i) != Some(&b':') {
                        return Err(p.err("after object key"));
                    }
                    p.i += 1;
                    pairs.push((k, p.value()?));
                    p.ws();
                    match p.b.get(p.i) {
                        Some(b',') => p.i += 1,
                        Some(b'}') => {
                            p.i += 1;
                            return Ok(GoValue::Map(pairs));
                        }
                        _ => return Err(p.err("after object key:value pair")),
                    }
                }
            }),
            Some(_) => Err(self.err("looking for beginning of value")),
        }
    }
    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<GoValue, DecodeError>,
    ) -> Result<GoValue, DecodeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(DecodeError::Syntax("exceeded max depth".into()));
        }
        self.i += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
    fn number(&mut self) -> Result<String, DecodeError> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while matches!(p.b.get(p.i), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > s
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err("in numeric literal")),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("after decimal point in numeric literal"));
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("in exponent of numeric literal"));
            }
        }
        Ok(String::from_utf8_lossy(&self.b[start..self.i]).into_owned())
    }
    fn hex4(&mut self) -> Option<u32> {
        let s = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
        let v = u32::from_str_radix(s, 16).ok()?;
        self.i += 4;
        Some(v)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        self.i += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("in string literal"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    // Go replaces invalid UTF-8 with U+FFFD rather than failing.
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                0..=0x1f => return Err(self.err("in string literal")),
                b'\\' => {
                    self.i += 1;
                    let Some(&e) = self.b.get(self.i) else {
                        return Err(self.err("in string escape code"));
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let Some(hi) = self.hex4() else {
                                return Err(self.err("in \\u hexadecimal character escape"));
                            };
                            self.surrogate(hi)
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("in string escape code"));
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
    /// A `\uXXXX` escape; a lone surrogate becomes U+FFFD, as in Go.
    fn surrogate(&mut self, hi: u32) -> char {
        if (0xD800..0xDC00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            if let Some(lo) = self.hex4()
                && (0xDC00..0xE000).contains(&lo)
            {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return char::from_u32(c).unwrap_or('\u{FFFD}');
            }
            self.i = save;
        }
        char::from_u32(hi).unwrap_or('\u{FFFD}')
    }
}
