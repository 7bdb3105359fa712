//! The `.npy` header dictionary, read by a tiny literal parser (never an evaluator).

use super::NpyError;

/// What the header dictionary declares.
pub(super) struct Header {
    /// The dtype string, e.g. `<f8`.
    pub(super) descr: String,
    /// Whether the data are in Fortran (column-major) order.
    pub(super) fortran_order: bool,
    /// The array's shape.
    pub(super) shape: Vec<usize>,
}

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    Other(String),
}

/// Parses the header dictionary, e.g. `{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }`.
pub(super) fn parse_header(text: &str) -> std::result::Result<Header, NpyError> {
    let bad = |m: String| NpyError::Header(m);
    let mut p = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    if !p.eat(b'{') {
        return Err(bad("the header is not a dictionary (no opening '{')".into()));
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p
            .string()
            .ok_or_else(|| bad("expected a quoted key".into()))?;
        p.ws();
        if !p.eat(b':') {
            return Err(bad(format!("expected ':' after key '{key}'")));
        }
        p.ws();
        let value = p
            .value()
            .ok_or_else(|| bad(format!("unreadable value for key '{key}'")))?;
        match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("descr", Value::Other(s)) => return Err(NpyError::Dtype(s)),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            ("descr" | "fortran_order" | "shape", _) => {
                return Err(bad(format!("key '{key}' has a value of the wrong type")))
            }
            (other, _) => return Err(bad(format!("unexpected key '{other}'"))),
        }
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.ws();
        if p.eat(b'}') {
            break;
        }
        return Err(bad("expected ',' or '}' between entries".into()));
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(bad("unexpected text after the closing '}'".into()));
    }
    Ok(Header {
        descr: descr.ok_or_else(|| bad("the key 'descr' is missing".into()))?,
        fortran_order: fortran.ok_or_else(|| bad("the key 'fortran_order' is missing".into()))?,
        shape: shape.ok_or_else(|| bad("the key 'shape' is missing".into()))?,
    })
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek().filter(|&q| q == b'\'' || q == b'"')?;
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&c| c == quote)?;
        self.i = start + len + 1;
        std::str::from_utf8(&self.s[start..start + len])
            .ok()
            .map(str::to_owned)
    }

    fn word(&mut self) -> &str {
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'\'' | b'"' => self.string().map(Value::Str),
            b'(' => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    self.ws();
                    if self.eat(b')') {
                        return Some(Value::Tuple(dims));
                    }
                    let digits = self.word().trim_end_matches('L').to_owned();
                    dims.push(digits.parse::<usize>().ok()?);
                    self.ws();
                    if !self.eat(b',') {
                        self.ws();
                        return self.eat(b')').then_some(Value::Tuple(dims));
                    }
                }
            }
            b'[' => {
                // A list descr is a structured dtype: skip to the matching bracket.
                let start = self.i;
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    self.i += 1;
                    match c {
                        b'[' => depth += 1,
                        b']' => {
                            depth -= 1;
                            if depth == 0 {
                                let text = String::from_utf8_lossy(&self.s[start..self.i]);
                                return Some(Value::Other(text.into_owned()));
                            }
                        }
                        _ => {}
                    }
                }
                None
            }
            _ => match self.word() {
                "True" => Some(Value::Bool(true)),
                "False" => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }
}
