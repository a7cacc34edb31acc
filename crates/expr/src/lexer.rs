//! Splits an expression into tokens, with GitHub's rules for what is a number, a keyword or an
//! unexpected symbol.

use crate::number;

/// What a token is. Literal values are decoded here; names keep their source text in
/// [`Token::text`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TokenKind {
    /// `(`: a group, or the parameters of a function when it follows one.
    Open,
    Close,
    OpenIndex,
    CloseIndex,
    Comma,
    Dereference,
    Wildcard,
    Not,
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Null,
    Bool(bool),
    Number(f64),
    /// A `'`-quoted string; [`string_value`] decodes its text.
    String,
    /// A keyword right after `.`.
    PropertyName,
    /// A keyword followed by `(`.
    Function,
    /// Any other keyword: a context name.
    NamedValue,
    /// Text that is no token: lexing fails on it.
    Unexpected,
}

impl TokenKind {
    /// Whether a `.` after this token starts a number (`.5`) rather than a dereference.
    fn expects_operand_next(self) -> bool {
        matches!(
            self,
            TokenKind::Comma
                | TokenKind::Open
                | TokenKind::OpenIndex
                | TokenKind::Not
                | TokenKind::And
                | TokenKind::Or
                | TokenKind::Eq
                | TokenKind::Ne
                | TokenKind::Lt
                | TokenKind::Le
                | TokenKind::Gt
                | TokenKind::Ge
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    /// Byte offsets of the token's source text.
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        source.get(self.start..self.end).unwrap_or("")
    }
}

/// Characters that end a keyword or number.
#[inline]
fn is_boundary(c: char) -> bool {
    match c {
        '(' | '[' | ')' | ']' | ',' | '.' | '!' | '>' | '<' | '=' | '&' | '|' => true,
        c => is_whitespace(c),
    }
}

#[inline]
fn is_whitespace(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_whitespace() || c == '\u{0B}'
    } else {
        c.is_whitespace()
    }
}

/// GitHub's keyword rule: an ASCII letter or `_`, then letters, digits, `_` and `-`.
pub fn is_legal_keyword(s: &str) -> bool {
    let bytes = s.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// Lexes the whole expression. On the first unexpected symbol, returns that token as the error.
pub fn tokenize(source: &str) -> Result<Vec<Token>, Token> {
    let mut lexer = Lexer {
        source,
        pos: 0,
        last: None,
    };
    // Expressions average well over two characters a token.
    let mut tokens = Vec::with_capacity(source.len() / 2 + 1);
    while let Some(token) = lexer.next_token() {
        if token.kind == TokenKind::Unexpected {
            return Err(token);
        }
        lexer.last = Some(token.kind);
        tokens.push(token);
    }
    Ok(tokens)
}

struct Lexer<'a> {
    source: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    last: Option<TokenKind>,
}

impl Lexer<'_> {
    /// The next character. Every character with a meaning is ASCII, so bytes are read
    /// directly and only other text is decoded.
    #[inline]
    fn peek(&self) -> Option<char> {
        let byte = *self.source.as_bytes().get(self.pos)?;
        if byte.is_ascii() {
            Some(char::from(byte))
        } else {
            self.source.get(self.pos..)?.chars().next()
        }
    }

    #[inline]
    fn peek_second(&self) -> Option<char> {
        self.source.as_bytes().get(self.pos + 1).map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                '\u{80}'
            }
        })
    }

    fn token(&mut self, kind: TokenKind, len: usize) -> Token {
        let start = self.pos;
        self.pos += len;
        Token {
            kind,
            start,
            end: self.pos,
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        while let Some(c) = self.peek().filter(|&c| is_whitespace(c)) {
            self.pos += c.len_utf8();
        }
        let c = self.peek()?;
        let second = self.peek_second();
        Some(match c {
            '(' => self.token(TokenKind::Open, 1),
            ')' => self.token(TokenKind::Close, 1),
            '[' => self.token(TokenKind::OpenIndex, 1),
            ']' => self.token(TokenKind::CloseIndex, 1),
            ',' => self.token(TokenKind::Comma, 1),
            '*' => self.token(TokenKind::Wildcard, 1),
            '.' => {
                if self.last.is_none_or(TokenKind::expects_operand_next) {
                    self.number()
                } else {
                    self.token(TokenKind::Dereference, 1)
                }
            }
            '!' if second == Some('=') => self.token(TokenKind::Ne, 2),
            '!' => self.token(TokenKind::Not, 1),
            '>' if second == Some('=') => self.token(TokenKind::Ge, 2),
            '>' => self.token(TokenKind::Gt, 1),
            '<' if second == Some('=') => self.token(TokenKind::Le, 2),
            '<' => self.token(TokenKind::Lt, 1),
            '=' if second == Some('=') => self.token(TokenKind::Eq, 2),
            '&' if second == Some('&') => self.token(TokenKind::And, 2),
            '|' if second == Some('|') => self.token(TokenKind::Or, 2),
            '=' | '&' | '|' => self.unexpected(),
            '\'' => self.string(),
            '-' | '+' | '0'..='9' => self.number(),
            _ => self.keyword(),
        })
    }

    /// Advances past the first character, then to the next boundary (or, for numbers, to the
    /// next boundary other than `.`).
    fn scan(&mut self, dots_allowed: bool) -> usize {
        let start = self.pos;
        let bytes = self.source.as_bytes();
        let mut i = start + self.peek().map_or(0, char::len_utf8);
        while let Some(&b) = bytes.get(i) {
            if b.is_ascii() {
                if is_boundary(char::from(b)) && !(dots_allowed && b == b'.') {
                    break;
                }
                i += 1;
            } else {
                match self.source.get(i..).and_then(|rest| rest.chars().next()) {
                    Some(c) if !is_whitespace(c) => i += c.len_utf8(),
                    _ => break,
                }
            }
        }
        self.pos = i;
        start
    }

    fn next_non_space_is_open(&self) -> bool {
        let rest = self.source.get(self.pos..).unwrap_or("");
        let after_ascii_space = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        after_ascii_space.starts_with('(')
            || (after_ascii_space.starts_with(|c: char| !c.is_ascii())
                && after_ascii_space.trim_start().starts_with('('))
    }

    fn unexpected(&mut self) -> Token {
        let start = self.scan(false);
        Token {
            kind: TokenKind::Unexpected,
            start,
            end: self.pos,
        }
    }

    fn number(&mut self) -> Token {
        let start = self.scan(true);
        let text = &self.source[start..self.pos];
        let value = number::parse(text);
        // NaN is only a number when spelt `NaN`, which is a keyword, not a number token.
        let kind = if value.is_nan() {
            TokenKind::Unexpected
        } else {
            TokenKind::Number(value)
        };
        Token {
            kind,
            start,
            end: self.pos,
        }
    }

    fn keyword(&mut self) -> Token {
        let start = self.scan(false);
        let text = &self.source[start..self.pos];
        let kind = if !is_legal_keyword(text) {
            TokenKind::Unexpected
        } else if self.last == Some(TokenKind::Dereference) {
            TokenKind::PropertyName
        } else {
            match text {
                "true" => TokenKind::Bool(true),
                "false" => TokenKind::Bool(false),
                "null" => TokenKind::Null,
                "NaN" => TokenKind::Number(f64::NAN),
                "Infinity" => TokenKind::Number(f64::INFINITY),
                _ if self.next_non_space_is_open() => TokenKind::Function,
                _ => TokenKind::NamedValue,
            }
        };
        Token {
            kind,
            start,
            end: self.pos,
        }
    }

    /// A `'`-quoted string, with `''` for a quote. Unterminated: the rest of the expression is
    /// the unexpected symbol.
    fn string(&mut self) -> Token {
        let start = self.pos;
        let bytes = self.source.as_bytes();
        let mut i = start + 1;
        let kind = loop {
            match bytes.get(i) {
                None => break TokenKind::Unexpected,
                Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                Some(b'\'') => {
                    i += 1;
                    break TokenKind::String;
                }
                Some(_) => i += 1,
            }
        };
        self.pos = i;
        Token {
            kind,
            start,
            end: self.pos,
        }
    }
}

/// The value of a string token's text: the quotes removed, `''` read as `'`.
pub fn string_value(text: &str) -> std::sync::Arc<str> {
    let inner = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(text);
    // Inside a well-formed token every quote is doubled, so one quote means an escape.
    if inner.contains('\'') {
        inner.replace("''", "'").into()
    } else {
        inner.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokenKind> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn unexpected(s: &str) -> String {
        tokenize(s).unwrap_err().text(s).to_string()
    }

    #[test]
    fn dot_is_number_or_dereference_by_context() {
        assert_eq!(kinds(".5"), [TokenKind::Number(0.5)]);
        assert_eq!(
            kinds("a.b"),
            [
                TokenKind::NamedValue,
                TokenKind::Dereference,
                TokenKind::PropertyName
            ]
        );
        assert_eq!(
            kinds("(.5)"),
            [TokenKind::Open, TokenKind::Number(0.5), TokenKind::Close]
        );
    }

    #[test]
    fn keywords() {
        assert_eq!(
            kinds("format ('x')"),
            [
                TokenKind::Function,
                TokenKind::Open,
                TokenKind::String,
                TokenKind::Close
            ]
        );
        assert_eq!(kinds("True"), [TokenKind::NamedValue]);
        assert_eq!(kinds("a.true")[2], TokenKind::PropertyName);
        assert_eq!(kinds("'it''s'"), [TokenKind::String]);
        assert_eq!(&*string_value("'it''s'"), "it's");
        assert_eq!(&*string_value("''"), "");
    }

    #[test]
    fn unexpected_symbols() {
        assert_eq!(unexpected("1 =2 =3"), "=2");
        assert_eq!(unexpected("'foo"), "'foo");
        assert_eq!(unexpected("..github/workflow.md"), "..github/workflow.md");
        assert_eq!(unexpected("github/workflow.md"), "github/workflow");
        assert_eq!(unexpected("😊 x"), "😊");
        assert_eq!(unexpected("-Inf"), "-Inf");
    }
}
