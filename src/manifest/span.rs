//! Source positions, kept as line and character column so that parsing stays cheap; byte
//! offsets are worked out only when a diagnostic is rendered.

use serde::Serialize;

/// A position in a source file: 1-based line, 0-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, col: 0 };
}

/// A half-open range of source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub fn point(pos: Pos) -> Span {
        Span {
            start: pos,
            end: pos,
        }
    }

    pub fn contains(&self, other: &Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl From<saphyr_parser::Span> for Span {
    fn from(span: saphyr_parser::Span) -> Self {
        Span {
            start: Pos {
                line: span.start.line(),
                col: span.start.col(),
            },
            end: Pos {
                line: span.end.line(),
                col: span.end.col(),
            },
        }
    }
}

/// Line starts of a text, to turn (line, column) into byte offsets.
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Byte range of a 1-based line, without its line break.
    pub fn line_range(&self, line: usize) -> std::ops::Range<usize> {
        let line = line.clamp(1, self.line_count());
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        let end = if self.text[start..end].ends_with('\r') {
            end - 1
        } else {
            end
        };
        start..end.max(start)
    }

    /// Byte offset of a position; a column past the end of its line lands at the line's end.
    pub fn offset(&self, pos: Pos) -> usize {
        let range = self.line_range(pos.line);
        let line = &self.text[range.clone()];
        range.start
            + line
                .char_indices()
                .nth(pos.col)
                .map_or(line.len(), |(i, _)| i)
    }

    /// Position of a byte offset (clamped to the text and to a character boundary).
    pub fn pos_of_offset(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let mut boundary = offset;
        while !self.text.is_char_boundary(boundary) {
            boundary -= 1;
        }
        Pos {
            line,
            col: self.text[start..boundary].chars().count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "a: 1\nnamé: x\r\nlast";
        let index = LineIndex::new(text);
        assert_eq!(index.line_count(), 3);
        assert_eq!(&text[index.line_range(2)], "namé: x");
        let x = index.offset(Pos { line: 2, col: 6 });
        assert_eq!(&text[x..x + 1], "x");
        assert_eq!(index.pos_of_offset(x), Pos { line: 2, col: 6 });
        assert_eq!(index.offset(Pos { line: 3, col: 99 }), text.len());
    }
}
