//! A configuration file's text, so that an error anywhere in it — or in a part of it parsed
//! later, such as one component's parameters — names `file:line:col`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// RON's options for every configuration bench reads: optional fields are written as plain
/// values (`label: "x"`, not `label: Some("x")`).
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// A configuration file and its text.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// # Errors
    /// An unreadable file, naming it.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Where `part`, a slice of this source's text (a borrowed RON value), begins; 0 for text
    /// from elsewhere.
    pub fn offset_of(&self, part: &str) -> usize {
        // Point at the value, not at the blanks RON keeps in front of it.
        self.start_of(part)
            .map_or(0, |s| s + (part.len() - part.trim_start().len()))
    }

    /// Where `part` begins, blanks included, if it is a slice of this source's text.
    fn start_of(&self, part: &str) -> Option<usize> {
        let start = self.text.as_ptr() as usize;
        let at = part.as_ptr() as usize;
        (at >= start && at + part.len() <= start + self.text.len()).then(|| at - start)
    }

    /// `file:line:col` of a byte offset (columns count characters, as RON's do).
    pub fn locate(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = 1 + before.matches('\n').count();
        let col = 1 + before.chars().rev().take_while(|&c| c != '\n').count();
        format!("{}:{line}:{col}", self.path.display())
    }

    /// Parses the whole text.
    ///
    /// # Errors
    /// RON's message as `file:line:col: message`.
    pub fn parse_all<'a, T: Deserialize<'a>>(&'a self) -> Result<T, String> {
        self.parse(&self.text)
    }

    /// Parses `part`, a slice of this source's text, with positions in the whole file.
    ///
    /// # Errors
    /// RON's message as `file:line:col: message`.
    pub fn parse<'a, T: Deserialize<'a>>(&self, part: &'a str) -> Result<T, String> {
        ron_options().from_str(part).map_err(|e| {
            let at = self.start_of(part).unwrap_or(0)
                + byte_offset(part, e.position.line, e.position.col);
            format!("{}: {}", self.locate(at), explain(&e.code))
        })
    }
}

/// The byte offset of RON's 1-based (line, character column) in `text`.
pub fn byte_offset(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset
                + l.char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    text.len()
}

/// RON's message, with a hint where a common mistake is likely.
pub fn explain(code: &ron::Error) -> String {
    let message = code.to_string();
    match code {
        ron::Error::ExpectedIdentifier => format!(
            "{message} (an option's choice is written without quotes, e.g. `look_ahead: Base`)"
        ),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_a_part_are_positions_in_the_file() {
        let src = Source::new("s.ron", "(\n  a: 1,\n  b: (x: 2, y: 1.2.3),\n)");
        let part = &src.text[src.text.find("(x").unwrap()..src.text.rfind(')').unwrap() - 2];
        let err = src.parse::<ron::Value>(part).unwrap_err();
        assert!(err.starts_with("s.ron:3:"), "{err}");
        assert_eq!(src.locate(src.offset_of(part)), "s.ron:3:6");
        assert_eq!(byte_offset("ab\ncd", 2, 2), 4);
    }
}
