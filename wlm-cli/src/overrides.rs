//! `--set key=value` on RON text: finds the dotted path in the document and splices the new
//! value in, keeping everything else (enum variants, comments, formatting) as written.
//!
//! Why text and not a value tree: `ron::Value` has no struct or enum names
//! (`Forecast(n_train: 5)` becomes a bare map, `Boids((…))` a one-element sequence), so a
//! document rebuilt from it no longer deserialises into the config; and going through the
//! typed config first would need the document to be complete before the overrides apply (no
//! `--set` for a field the file lacks). So a small scanner locates the value's byte span, and
//! ron itself parses the result.
//!
//! The scanner works on bytes and only ever cuts the text next to an ASCII delimiter, so any
//! UTF-8 (a `σ` in a comment or a string) is safe. A non-ASCII character outside a string in
//! the *value* of an override (a Unicode minus `−` pasted into `lr=1e−4`) is an error naming
//! the key and the value, rather than a RON syntax error after every override is applied.

use anyhow::{anyhow, bail, Result};

/// A token of RON text with its byte span.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `( ) [ ] { } : , # !`
    Punct(char),
    /// An identifier (`train`, `Some`, `r#type`).
    Ident(String),
    /// A string, char, number or other literal; the text is not needed.
    Literal,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            let mut depth = 0usize;
            loop {
                if i >= bytes.len() {
                    bail!("unterminated block comment");
                }
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b"()[]{}:,#!".contains(&c) {
            out.push(Token {
                tok: Tok::Punct(c as char),
                start: i,
                end: i + 1,
            });
            i += 1;
        } else if c == b'"' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            if i >= bytes.len() {
                bail!("unterminated string starting at byte {start}");
            }
            i += 1;
            out.push(Token {
                tok: Tok::Literal,
                start,
                end: i,
            });
        } else if c == b'r' && (bytes[i..].starts_with(b"r\"") || bytes[i..].starts_with(b"r#")) {
            let start = i;
            let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
            if bytes.get(i + 1 + hashes) != Some(&b'"') {
                // `r#ident`: a raw identifier.
                i = ident_end(bytes, i + 2);
                out.push(Token {
                    tok: Tok::Ident(text[start + 2..i].to_string()),
                    start,
                    end: i,
                });
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            let end = find_bytes(&bytes[body..], close.as_bytes())
                .ok_or_else(|| anyhow!("unterminated raw string starting at byte {start}"))?;
            i = body + end + close.len();
            out.push(Token {
                tok: Tok::Literal,
                start,
                end: i,
            });
        } else if c == b'\'' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            out.push(Token {
                tok: Tok::Literal,
                start,
                end: i,
            });
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            i = ident_end(bytes, i);
            let name = text[start..i].to_string();
            out.push(Token {
                tok: Tok::Ident(name),
                start,
                end: i,
            });
        } else {
            // Numbers and anything else up to a delimiter.
            let start = i;
            while i < bytes.len()
                && !bytes[i].is_ascii_whitespace()
                && !b"()[]{}:,\"'".contains(&bytes[i])
                && !bytes[i..].starts_with(b"//")
                && !bytes[i..].starts_with(b"/*")
            {
                i += 1;
            }
            if i == start {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Literal,
                start,
                end: i,
            });
        }
    }
    Ok(out)
}

/// The end of the identifier whose characters start at byte `i` (ASCII letters, digits, `_`).
fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    i
}

/// The first position of `needle` in `haystack`.
fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Rejects a value with a non-ASCII character outside its strings, comments and character
/// literals: RON has none there, and the usual culprit is a Unicode minus (`−`, U+2212) or
/// a typographic quote pasted from a document.
fn check_value(value: &str) -> Result<()> {
    for token in tokenize(value)? {
        let slice = &value[token.start..token.end];
        let quoted =
            slice.starts_with(['"', '\'']) || slice.starts_with("r\"") || slice.starts_with("r#\"");
        if quoted {
            continue;
        }
        if let Some(c) = slice.chars().find(|c| !c.is_ascii()) {
            let hint = match c {
                '\u{2212}' | '\u{2012}' | '\u{2013}' | '\u{2014}' => {
                    " (a minus sign is the ASCII `-`)"
                }
                '\u{201c}' | '\u{201d}' | '\u{2018}' | '\u{2019}' => {
                    " (strings take ASCII quotes `\"`)"
                }
                _ => "",
            };
            bail!(
                "value `{value}` has the character `{c}` (U+{:04X}) outside a string; RON \
                 numbers and names are ASCII{hint}",
                u32::from(c)
            );
        }
    }
    Ok(())
}

/// A parsed value: its byte span and, for containers, its parts.
#[derive(Debug)]
struct Node {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A literal or bare identifier.
    Atom { is_string: bool },
    /// `(key: value, …)` or `Name(key: value, …)`; `body` is the byte just after `(`.
    Struct {
        body: usize,
        fields: Vec<(String, Node)>,
    },
    /// `(a, b)`, `Name(a)`, `Some(a)`.
    Tuple(Vec<Node>),
    /// `[…]` or `{…}`.
    Other,
}

struct Parser<'a> {
    tokens: &'a [Token],
    text: &'a str,
    pos: usize,
    /// Open parentheses around the current position (bounded by [`MAX_DEPTH`]).
    depth: usize,
}

/// Deepest nesting of `( … )` the scanner follows (ron's own default limit is 128): deeper
/// text is an error, not a stack overflow.
const MAX_DEPTH: usize = 128;

impl Parser<'_> {
    fn peek(&self, k: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + k).map(|t| &t.tok)
    }

    /// Steps over a `,` if one is next; whether it did.
    fn eat_comma(&mut self) -> bool {
        let comma = self.peek(0) == Some(&Tok::Punct(','));
        if comma {
            self.pos += 1;
        }
        comma
    }

    fn expect(&mut self, c: char) -> Result<usize> {
        match self.tokens.get(self.pos) {
            Some(t) if t.tok == Tok::Punct(c) => {
                self.pos += 1;
                Ok(t.end)
            }
            Some(t) => bail!(
                "expected `{c}` at byte {}, found `{}`",
                t.start,
                self.slice(t)
            ),
            None => bail!("expected `{c}`, found the end of the text"),
        }
    }

    fn slice(&self, t: &Token) -> &str {
        &self.text[t.start..t.end]
    }

    /// Skips `#![enable(...)]` attributes at the start of a document.
    fn skip_attributes(&mut self) -> Result<()> {
        while self.peek(0) == Some(&Tok::Punct('#')) {
            self.pos += 1;
            if self.peek(0) == Some(&Tok::Punct('!')) {
                self.pos += 1;
            }
            self.skip_group('[', ']')?;
        }
        Ok(())
    }

    fn skip_group(&mut self, open: char, close: char) -> Result<usize> {
        self.expect(open)?;
        let mut depth = 1;
        while let Some(t) = self.tokens.get(self.pos) {
            self.pos += 1;
            match t.tok {
                Tok::Punct(c) if c == open => depth += 1,
                Tok::Punct(c) if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(t.end);
                    }
                }
                _ => {}
            }
        }
        bail!("unclosed `{open}`")
    }

    fn value(&mut self) -> Result<Node> {
        let first = self
            .tokens
            .get(self.pos)
            .ok_or_else(|| anyhow!("expected a value, found the end of the text"))?
            .clone();
        match &first.tok {
            Tok::Punct('[') => {
                let end = self.skip_group('[', ']')?;
                Ok(Node {
                    start: first.start,
                    end,
                    kind: Kind::Other,
                })
            }
            Tok::Punct('{') => {
                let end = self.skip_group('{', '}')?;
                Ok(Node {
                    start: first.start,
                    end,
                    kind: Kind::Other,
                })
            }
            Tok::Punct('(') => self.parens(first.start),
            Tok::Ident(_) => {
                self.pos += 1;
                if self.peek(0) == Some(&Tok::Punct('(')) {
                    self.parens(first.start)
                } else {
                    Ok(Node {
                        start: first.start,
                        end: first.end,
                        kind: Kind::Atom { is_string: false },
                    })
                }
            }
            Tok::Literal => {
                self.pos += 1;
                let is_string = self.text[first.start..].starts_with('"')
                    || self.text[first.start..].starts_with('r');
                Ok(Node {
                    start: first.start,
                    end: first.end,
                    kind: Kind::Atom { is_string },
                })
            }
            Tok::Punct(c) => bail!("unexpected `{c}` at byte {}", first.start),
        }
    }

    /// `( … )` starting at the current token; `start` is where the whole value starts.
    fn parens(&mut self, start: usize) -> Result<Node> {
        if self.depth >= MAX_DEPTH {
            bail!("nesting deeper than {MAX_DEPTH} levels at byte {start}");
        }
        self.depth += 1;
        let node = self.parens_body(start);
        self.depth -= 1;
        node
    }

    fn parens_body(&mut self, start: usize) -> Result<Node> {
        let body = self.expect('(')?;
        let is_struct = matches!(
            (self.peek(0), self.peek(1)),
            (Some(Tok::Ident(_)), Some(Tok::Punct(':')))
        ) || self.peek(0) == Some(&Tok::Punct(')'));
        let kind = if is_struct {
            let mut fields = Vec::new();
            while self.peek(0) != Some(&Tok::Punct(')')) {
                let name = match self.peek(0) {
                    Some(Tok::Ident(name)) => name.clone(),
                    _ => {
                        let t = self
                            .tokens
                            .get(self.pos)
                            .map(|t| t.start)
                            .unwrap_or(self.text.len());
                        bail!("expected a field name at byte {t}");
                    }
                };
                self.pos += 1;
                self.expect(':')?;
                let value = self.value()?;
                fields.push((name, value));
                if !self.eat_comma() {
                    break;
                }
            }
            Kind::Struct { body, fields }
        } else {
            let mut items = Vec::new();
            while self.peek(0) != Some(&Tok::Punct(')')) {
                items.push(self.value()?);
                if !self.eat_comma() {
                    break;
                }
            }
            Kind::Tuple(items)
        };
        let end = self.expect(')')?;
        Ok(Node { start, end, kind })
    }
}

/// Returns `text` with the value at the dotted `path` replaced by `value` (RON text), or the
/// field inserted when the struct on the path does not have it yet (missing intermediate
/// structs are created as `(key: …)`).
///
/// A bare word given where the document has a string (`--set name=run1`) is quoted.
///
/// # Errors
/// Malformed RON around the path; a path that goes through something that is not a struct
/// (a list, a number); a value with a non-ASCII character outside a string (see the module
/// docs).
pub(crate) fn set_path(text: &str, path: &str, value: &str) -> Result<String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        bail!("invalid key `{path}`: expected a dotted path such as `train.steps`");
    }
    check_value(value)?;
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        text,
        pos: 0,
        depth: 0,
    };
    parser.skip_attributes()?;
    let root = parser.value()?;
    let mut node = &root;
    let mut k = 0;
    loop {
        match &node.kind {
            Kind::Tuple(items) if items.len() == 1 => node = &items[0],
            Kind::Struct { body, fields } => {
                let segment = segments[k];
                match fields.iter().find(|(name, _)| name == segment) {
                    Some((_, child)) if k + 1 == segments.len() => {
                        let value = match child.kind {
                            Kind::Atom { is_string: true }
                                if !value.trim_start().starts_with('"')
                                    && !value.trim_start().starts_with("r\"")
                                    && !value.trim_start().starts_with("r#") =>
                            {
                                format!("{value:?}")
                            }
                            _ => value.to_string(),
                        };
                        return Ok(format!(
                            "{}{}{}",
                            &text[..child.start],
                            value,
                            &text[child.end..]
                        ));
                    }
                    Some((_, child)) => {
                        node = child;
                        k += 1;
                    }
                    None => {
                        let mut inserted = value.to_string();
                        for seg in segments[k + 1..].iter().rev() {
                            inserted = format!("({seg}: {inserted})");
                        }
                        let sep = if fields.is_empty() { "" } else { ", " };
                        return Ok(format!(
                            "{}{segment}: {inserted}{sep}{}",
                            &text[..*body],
                            &text[*body..]
                        ));
                    }
                }
            }
            _ => {
                let done = segments[..k].join(".");
                let at = if done.is_empty() {
                    "the document".to_string()
                } else {
                    format!("`{done}`")
                };
                bail!("cannot set `{path}`: {at} is not a struct with named fields");
            }
        }
    }
}

#[cfg(test)]
mod tests;
