//! File-name patterns for `diode-send-dir --ignore`: `*` (any run of
//! characters), `?` (one character), `[abc]`, `[a-z]` and `[!abc]` (one
//! character of, or not of, a set); anything else matches itself. A
//! pattern matches the whole name.

use std::fmt;
use std::str::FromStr;

/// A compiled file-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// A `[` without its `]`.
    #[error("`{0}`: a `[` has no closing `]` (write `[[]` for a literal `[`)")]
    Unclosed(String),
    /// Looks like a regular expression, as Lidi's `--ignore` takes.
    #[error(
        "`{0}` looks like a regular expression (Lidi's --ignore); Ferry's --ignore takes a \
         glob on the file name: e.g. '*.tmp', '.*' or 'partial-*'"
    )]
    Regex(String),
}

impl Glob {
    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        match_from(&self.tokens, &name)
    }
}

fn match_from(tokens: &[Token], name: &[char]) -> bool {
    match tokens.split_first() {
        None => name.is_empty(),
        Some((Token::Star, rest)) => (0..=name.len()).any(|i| match_from(rest, &name[i..])),
        Some((token, rest)) => match name.split_first() {
            None => false,
            Some((c, tail)) => {
                let ok = match token {
                    Token::Char(p) => p == c,
                    Token::Any => true,
                    Token::Set { negated, ranges } => {
                        ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&c)) != *negated
                    }
                    Token::Star => unreachable!("handled above"),
                };
                ok && match_from(rest, tail)
            }
        },
    }
}

impl FromStr for Glob {
    type Err = GlobError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with('^') || (text.ends_with('$') && text.len() > 1) {
            return Err(GlobError::Regex(text.to_owned()));
        }
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    let mut j = i + 1;
                    let negated = matches!(chars.get(j), Some('!' | '^'));
                    if negated {
                        j += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(&c) = chars.get(j) else {
                            return Err(GlobError::Unclosed(text.to_owned()));
                        };
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        if chars.get(j + 1) == Some(&'-')
                            && chars.get(j + 2).is_some_and(|c| *c != ']')
                        {
                            ranges.push((c, chars[j + 2]));
                            j += 3;
                        } else {
                            ranges.push((c, c));
                            j += 1;
                        }
                    }
                    tokens.push(Token::Set { negated, ranges });
                    i = j;
                }
                c => tokens.push(Token::Char(c)),
            }
            i += 1;
        }
        Ok(Self {
            text: text.to_owned(),
            tokens,
        })
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        p.parse().unwrap()
    }

    #[test]
    fn patterns_match_whole_names() {
        assert!(g("*.tmp").matches("a.tmp"));
        assert!(g("*.tmp").matches(".tmp"));
        assert!(!g("*.tmp").matches("a.tmp.txt"));
        assert!(g("part-??.bin").matches("part-01.bin"));
        assert!(!g("part-??.bin").matches("part-1.bin"));
        assert!(g("[a-c]*").matches("b"));
        assert!(!g("[!a-c]*").matches("b"));
        assert!(g("[]]").matches("]"));
        assert!(g("données*").matches("données.csv"));
        assert!(g("*").matches(""));
    }

    #[test]
    fn regexes_and_broken_sets_are_refused() {
        assert!(matches!(
            "^\\..*$".parse::<Glob>(),
            Err(GlobError::Regex(_))
        ));
        assert!(matches!("[ab".parse::<Glob>(), Err(GlobError::Unclosed(_))));
    }
}
