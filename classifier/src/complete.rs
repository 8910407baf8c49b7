//! Whether shell text is a whole command yet: what bash decides before it runs a script's next
//! unit (an `if` runs at its `fi`, a heredoc at its terminator). Pure, like the rest of the
//! crate; the gateway uses it to cut a script (or a terminal's lines) into units it judges and
//! runs one at a time.

use std::io::Cursor;

use brush_parser::{ParseError, Parser, ParserOptions};

/// What more input would do to the text so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// It parses: one or more whole commands (or only blanks and comments).
    Complete,
    /// It ends inside a construct (open `if`/`for`/`{`, quote, heredoc, trailing `&&` or `\`):
    /// more lines may finish it.
    Incomplete,
    /// A syntax error no further input can mend; bash would refuse it now.
    Invalid,
}

/// Judge `text` (whole lines, newlines included).
pub fn completeness(text: &str) -> Completeness {
    // A line ending in a backslash continues, whatever the parser makes of it.
    if text.trim_end_matches('\n').ends_with('\\') && !text.trim_end_matches('\n').ends_with("\\\\")
    {
        return Completeness::Incomplete;
    }
    // The parser recurses per nested compound: text that may nest too deep is never parsed
    // (bash's verdict does not matter here; the classifier calls it high).
    if crate::compound_openers(text) > crate::MAX_NESTING {
        return Completeness::Invalid;
    }
    let mut parser = Parser::new(Cursor::new(text.as_bytes()), &ParserOptions::default());
    match parser.parse_program() {
        Ok(_) => Completeness::Complete,
        Err(ParseError::ParsingAtEndOfInput) => Completeness::Incomplete,
        Err(ParseError::Tokenizing { inner, .. }) if inner.is_incomplete() => {
            Completeness::Incomplete
        }
        Err(_) => Completeness::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_end_where_bash_would_run_them() {
        use Completeness::*;
        assert_eq!(completeness("echo a\n"), Complete);
        assert_eq!(completeness("# only a comment\n"), Complete);
        assert_eq!(completeness("if true; then\n"), Incomplete);
        assert_eq!(completeness("if true; then\n  echo y\nfi\n"), Complete);
        assert_eq!(completeness("for i in 1 2; do\n"), Incomplete);
        assert_eq!(completeness("cat <<EOF\nhello\n"), Incomplete);
        assert_eq!(completeness("cat <<EOF\nhello\nEOF\n"), Complete);
        assert_eq!(completeness("echo 'open\n"), Incomplete);
        assert_eq!(completeness("true &&\n"), Incomplete);
        assert_eq!(completeness("echo a \\\n"), Incomplete);
        assert_eq!(completeness("f() {\n"), Incomplete);
        assert_eq!(completeness("fi\n"), Invalid);
    }
}
