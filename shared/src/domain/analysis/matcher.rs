//! Tokenizing and multi-word phrase matching, allocation-light so a 10 KB
//! transcript takes microseconds.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Lower-cased word (apostrophes kept: "what's", "didn't").
    pub text: String,
    /// Followed by '!'.
    pub exclaim: bool,
    /// Followed directly by ':' (as in "7:30").
    pub colon_next: bool,
    /// Followed by a clause break (`.`, `,`, `?`, `;`): negation and
    /// intensity do not reach across it.
    pub clause_end: bool,
}

pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::with_capacity(text.len() / 5);
    let mut current = String::new();
    let flush = |current: &mut String, tokens: &mut Vec<Token>| {
        let word = current.trim_matches('\'');
        if !word.is_empty() {
            tokens.push(Token {
                text: word.to_string(),
                exclaim: false,
                colon_next: false,
                clause_end: false,
            });
        }
        current.clear();
    };
    for c in text.chars() {
        let c = if c == '’' || c == '‘' { '\'' } else { c };
        if c.is_alphanumeric() || c == '\'' {
            current.extend(c.to_lowercase());
            continue;
        }
        flush(&mut current, &mut tokens);
        if let Some(last) = tokens.last_mut() {
            match c {
                '!' => {
                    last.exclaim = true;
                    last.clause_end = true;
                }
                ':' => last.colon_next = true,
                '.' | ',' | '?' | ';' | '\n' => {
                    last.colon_next = false;
                    last.clause_end = true;
                }
                _ => last.colon_next = false,
            }
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

#[derive(Debug, Clone)]
enum Pat {
    Exact(String),
    Prefix(String),
}

impl Pat {
    fn matches(&self, word: &str) -> bool {
        match self {
            Pat::Exact(w) => w == word,
            Pat::Prefix(p) => word.starts_with(p.as_str()),
        }
    }
}

struct Entry<T> {
    value: T,
    rest: Vec<Pat>,
    weight: f32,
    id: usize,
}

/// Finds lexicon phrases in token streams, longest match first, without overlaps.
pub struct PhraseMatcher<T> {
    exact: HashMap<String, Vec<Entry<T>>>,
    /// Prefix entries by their first character, so a word only tries the few
    /// that can match.
    prefix: HashMap<char, Vec<(String, Entry<T>)>>,
}

impl<T: Copy> PhraseMatcher<T> {
    pub fn new<'a>(entries: impl Iterator<Item = (T, &'a str, f32)>) -> Self {
        let mut exact: HashMap<String, Vec<Entry<T>>> = HashMap::new();
        let mut prefix: HashMap<char, Vec<(String, Entry<T>)>> = HashMap::new();
        for (id, (value, phrase, weight)) in entries.enumerate() {
            let mut pats = phrase
                .split_whitespace()
                .map(|w| match w.strip_suffix('*') {
                    Some(p) => Pat::Prefix(p.to_string()),
                    None => Pat::Exact(w.to_string()),
                });
            let Some(first) = pats.next() else { continue };
            let entry = Entry {
                value,
                rest: pats.collect(),
                weight,
                id,
            };
            match first {
                Pat::Exact(w) => exact.entry(w).or_default().push(entry),
                Pat::Prefix(p) => {
                    let first = p.chars().next().unwrap_or_default();
                    prefix.entry(first).or_default().push((p, entry))
                }
            }
        }
        for list in exact.values_mut() {
            list.sort_by_key(|e| std::cmp::Reverse(e.rest.len()));
        }
        for list in prefix.values_mut() {
            list.sort_by_key(|(_, e)| std::cmp::Reverse(e.rest.len()));
        }
        Self { exact, prefix }
    }

    /// Calls `f(value, weight, start, entry id)` for each match.
    pub fn for_each_match(&self, tokens: &[Token], mut f: impl FnMut(T, f32, usize, usize)) {
        let mut i = 0;
        while i < tokens.len() {
            let word = tokens[i].text.as_str();
            let fits = |e: &Entry<T>| {
                e.rest.len() < tokens.len() - i
                    && e.rest
                        .iter()
                        .zip(&tokens[i + 1..])
                        .all(|(p, t)| p.matches(&t.text))
            };
            let exact = self
                .exact
                .get(word)
                .and_then(|list| list.iter().find(|e| fits(e)));
            let by_prefix = word
                .chars()
                .next()
                .and_then(|c| self.prefix.get(&c))
                .and_then(|list| {
                    list.iter()
                        .find(|(p, e)| word.starts_with(p.as_str()) && fits(e))
                })
                .map(|(_, e)| e);
            let best = match (exact, by_prefix) {
                (Some(a), Some(b)) => Some(if b.rest.len() > a.rest.len() { b } else { a }),
                (a, b) => a.or(b),
            };
            match best {
                Some(e) => {
                    f(e.value, e.weight, i, e.id);
                    i += 1 + e.rest.len();
                }
                None => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn tokenizes_words_contractions_and_marks() {
        assert_eq!(
            words("Hi!! What’s up, I didn't—get it at 7:30."),
            vec!["hi", "what's", "up", "i", "didn't", "get", "it", "at", "7", "30"]
        );
        let t = tokenize("wow! at 7:30");
        assert!(t[0].exclaim);
        assert!(t[2].colon_next);
    }

    #[test]
    fn longest_phrase_wins_and_prefixes_match() {
        let m = PhraseMatcher::new(
            [
                (1, "problem", -1.0),
                (2, "no problem", 0.0),
                (3, "reserv*", 2.0),
            ]
            .into_iter(),
        );
        let mut hits = Vec::new();
        m.for_each_match(
            &tokenize("no problem, a reservation problem"),
            |v, _, at, _| hits.push((v, at)),
        );
        assert_eq!(hits, vec![(2, 0), (3, 3), (1, 4)]);
    }
}
