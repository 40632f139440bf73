//! Reading Bulk API 2.0 results (RFC 4180 CSV) a record at a time, its cells borrowed from the
//! read buffer. Salesforce quotes every value, so a cell is found with one `memchr` for its
//! closing quote, and its text (between the quotes) is usually the JSON string's text as well:
//! the record's canonical bytes are then copied, not rebuilt a byte at a time. A general CSV
//! reader cost more per record than everything else the client does with it.
//!
//! What it accepts: quoted and unquoted cells, quotes doubled inside quoted cells, line breaks
//! inside quoted cells, LF, CRLF or CR line endings, a last line without one, and blank lines
//! (skipped). What it refuses, naming the record (the header is record 1; lines are not
//! counted, as that would take a second pass over every byte): text after a closing quote, a quoted
//! cell that never closes, and text that is not UTF-8.

use std::io::Read;

/// Bytes asked of the input at a time; a record longer than the buffer grows it.
const READ_SIZE: usize = 256 * 1024;

/// A CSV stream that cannot be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvError {
    Io(String),
    Malformed { record: u64, reason: &'static str },
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CsvError::Io(message) => f.write_str(message),
            CsvError::Malformed { record, reason } => write!(f, "record {record}: {reason}"),
        }
    }
}

/// One cell: a byte range of the buffer, and whether its quotes are doubled inside (then its
/// text is the `unescaped` entry named here).
#[derive(Debug, Clone, Copy)]
struct Cell {
    start: usize,
    end: usize,
    doubled_quotes: bool,
    unescaped: usize,
}

/// Reads records from `input`, separated by `delimiter`.
pub struct CsvReader<R> {
    input: R,
    delimiter: u8,
    /// Read bytes are `buf[..end]`; the rest is room for the next read.
    buf: Vec<u8>,
    end: usize,
    /// Where the unread bytes start.
    start: usize,
    end_of_input: bool,
    cells: Vec<Cell>,
    /// The number of the next record (1-based, blank lines not counted), for errors.
    record: u64,
    unescaped: Vec<String>,
}

/// The outcome of trying to read a record from what is buffered.
enum Scan {
    /// A record, and where the next one starts.
    Record {
        next: usize,
    },
    /// A blank line, skipped.
    Blank {
        next: usize,
    },
    NeedMore,
}

impl<R: Read> CsvReader<R> {
    pub fn new(input: R, delimiter: u8) -> Self {
        CsvReader {
            input,
            delimiter,
            buf: Vec::new(),
            end: 0,
            start: 0,
            end_of_input: false,
            cells: Vec::new(),
            record: 1,
            unescaped: Vec::new(),
        }
    }

    /// The next record, or None at the end of the input. Its cells borrow the reader.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, CsvError> {
        loop {
            if self.start == self.end && self.end_of_input {
                return Ok(None);
            }
            match self.scan()? {
                Scan::Record { next } => {
                    let base = self.start;
                    self.unescape();
                    let Ok(text) = std::str::from_utf8(&self.buf[base..next]) else {
                        return Err(self.malformed("the record is not UTF-8"));
                    };
                    self.start = next;
                    self.record += 1;
                    return Ok(Some(Record {
                        text,
                        base,
                        cells: &self.cells,
                        unescaped: &self.unescaped,
                    }));
                }
                Scan::Blank { next } => self.start = next,
                Scan::NeedMore => self.fill()?,
            }
        }
    }

    /// Reads more input after what is buffered, moving the unread bytes to the front first.
    fn fill(&mut self) -> Result<(), CsvError> {
        if self.end_of_input {
            // scan() only asks for more before the end of the input.
            return Err(self.malformed("the input ended inside a record"));
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A record longer than the buffer: room for it (zeroed once, then reused).
            self.buf.resize((2 * self.buf.len()).max(READ_SIZE), 0);
        }
        let read = loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CsvError::Io(e.to_string())),
            }
        };
        self.end += read;
        if read == 0 {
            self.end_of_input = true;
        }
        Ok(())
    }

    /// Finds the cells of the record at `start`, if all of it is buffered.
    fn scan(&mut self) -> Result<Scan, CsvError> {
        let buf = &self.buf[..self.end];
        let end = self.end;
        let mut at = self.start;
        self.cells.clear();
        if at < end && (buf[at] == b'\n' || buf[at] == b'\r') {
            return match line_end(buf, at, self.end_of_input) {
                Some(next) => Ok(Scan::Blank { next }),
                None => Ok(Scan::NeedMore),
            };
        }
        loop {
            // At the start of a cell.
            let cell = if at < end && buf[at] == b'"' {
                let mut search = at + 1;
                let mut doubled_quotes = false;
                let close = loop {
                    let Some(found) = memchr::memchr(b'"', &buf[search..]) else {
                        if self.end_of_input {
                            return Err(self.malformed("a quoted cell is never closed"));
                        }
                        return Ok(Scan::NeedMore);
                    };
                    let quote = search + found;
                    match buf.get(quote + 1) {
                        Some(b'"') => {
                            doubled_quotes = true;
                            search = quote + 2;
                        }
                        None if !self.end_of_input => return Ok(Scan::NeedMore),
                        _ => break quote,
                    }
                };
                let cell = Cell {
                    start: at + 1,
                    end: close,
                    doubled_quotes,
                    unescaped: 0,
                };
                at = close + 1;
                if at < end && ![self.delimiter, b'\n', b'\r'].contains(&buf[at]) {
                    return Err(self.malformed("text follows the closing quote of a cell"));
                }
                cell
            } else {
                let cell_end = match memchr::memchr3(self.delimiter, b'\n', b'\r', &buf[at..]) {
                    Some(found) => at + found,
                    None if self.end_of_input => end,
                    None => return Ok(Scan::NeedMore),
                };
                let cell = Cell {
                    start: at,
                    end: cell_end,
                    doubled_quotes: false,
                    unescaped: 0,
                };
                at = cell_end;
                cell
            };
            self.cells.push(cell);
            // After a cell: a delimiter, a line end, or the end of the input.
            if at == end {
                if self.end_of_input {
                    return Ok(Scan::Record { next: end });
                }
                return Ok(Scan::NeedMore);
            }
            if buf[at] == self.delimiter {
                at += 1;
                continue;
            }
            return match line_end(buf, at, self.end_of_input) {
                Some(next) => Ok(Scan::Record { next }),
                None => Ok(Scan::NeedMore),
            };
        }
    }

    fn malformed(&self, reason: &'static str) -> CsvError {
        CsvError::Malformed {
            record: self.record,
            reason,
        }
    }

    /// The text of cells with doubled quotes, undoubled (rare: only text holding a quote).
    fn unescape(&mut self) {
        self.unescaped.clear();
        for cell in &mut self.cells {
            if cell.doubled_quotes {
                // Not UTF-8 fails the whole record after this; lossy text is never seen then.
                let text = String::from_utf8_lossy(&self.buf[cell.start..cell.end]);
                cell.unescaped = self.unescaped.len();
                self.unescaped.push(text.replace("\"\"", "\""));
            }
        }
    }
}

/// Where the line ending at `at` (`\n`, `\r\n` or a lone `\r`) ends; None when that depends on
/// a byte not read yet.
fn line_end(buf: &[u8], at: usize, end_of_input: bool) -> Option<usize> {
    match (buf[at], buf.get(at + 1)) {
        (b'\r', Some(b'\n')) => Some(at + 2),
        (b'\r', None) if !end_of_input => None,
        _ => Some(at + 1),
    }
}

/// One record's cells, valid until the next is read.
pub struct Record<'a> {
    /// The record's text, from the buffer offset `base`.
    text: &'a str,
    base: usize,
    cells: &'a [Cell],
    unescaped: &'a [String],
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The record's length in the input, line ending included.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// The record's text without its line ending: its cells, delimiters and quotes.
    pub fn content(&self) -> &'a [u8] {
        self.text.trim_end_matches(['\r', '\n']).as_bytes()
    }

    /// The bytes of cell `i` when they are its text (no doubled quotes to undo); None past the
    /// last cell.
    pub fn plain(&self, i: usize) -> Option<&'a [u8]> {
        let cell = self.cells.get(i).filter(|c| !c.doubled_quotes)?;
        self.text
            .as_bytes()
            .get(cell.start - self.base..cell.end - self.base)
    }

    /// The text of cell `i`; None past the last cell.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let cell = self.cells.get(i)?;
        if cell.doubled_quotes {
            return self.unescaped.get(cell.unescaped).map(String::as_str);
        }
        // Cells end at ASCII bytes, so their ranges are character boundaries.
        self.text.get(cell.start - self.base..cell.end - self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    /// Gives out at most `step` bytes per read, so records straddle every possible boundary.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn read_all(bytes: &[u8], step: usize) -> Result<Vec<Vec<String>>, CsvError> {
        let mut reader = CsvReader::new(Trickle { bytes, step }, b',');
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(
                (0..record.len())
                    .map(|i| record.get(i).unwrap_or("<missing>").to_string())
                    .collect(),
            );
        }
        Ok(records)
    }

    #[rstest]
    #[case::salesforce_style("\"Id\",\"Name\"\n\"001\",\"Acme\"\n", vec![vec!["Id", "Name"], vec!["001", "Acme"]])]
    #[case::unquoted_and_empty("a,,c\n1,2,\n", vec![vec!["a", "", "c"], vec!["1", "2", ""]])]
    #[case::doubled_quotes("\"say \"\"hi\"\"\",\"\"\"\"\n", vec![vec!["say \"hi\"", "\""]])]
    #[case::line_break_in_a_cell("\"two\nlines\",x\r\ny,z", vec![vec!["two\nlines", "x"], vec!["y", "z"]])]
    #[case::crlf_cr_and_blank_lines("a\r\n\r\nb\rc\n\n", vec![vec!["a"], vec!["b"], vec!["c"]])]
    #[case::quoted_empty_last_line("\"\"", vec![vec![""]])]
    #[case::no_input("", vec![])]
    #[case::unicode("\"Zürich 🏔\",\"東京\"\n", vec![vec!["Zürich 🏔", "東京"]])]
    fn reads_records_whatever_the_chunking(#[case] input: &str, #[case] expected: Vec<Vec<&str>>) {
        for step in [1, 2, 3, 7, 1 << 20] {
            let records = read_all(input.as_bytes(), step).expect("readable");
            assert_eq!(records, expected, "read {step} bytes at a time");
        }
    }

    #[rstest]
    #[case::never_closed("a,b\n\"open,c\n", 2, "a quoted cell is never closed")]
    #[case::text_after_quote("a\n\n\"x\"y,z\n", 2, "text follows the closing quote of a cell")]
    #[case::records_counted_not_lines(
        "\"1\n2\n3\",x\n\"y\"z\n",
        2,
        "text follows the closing quote of a cell"
    )]
    fn refuses_malformed_csv_naming_the_record(
        #[case] input: &str,
        #[case] record: u64,
        #[case] reason: &'static str,
    ) {
        for step in [1, 5, 1 << 20] {
            assert_eq!(
                read_all(input.as_bytes(), step),
                Err(CsvError::Malformed { record, reason }),
                "read {step} bytes at a time"
            );
        }
    }

    #[test]
    fn refuses_text_that_is_not_utf8() {
        let input = b"\"ok\"\n\"caf\xe9\"\n";
        assert_eq!(
            read_all(input, 3),
            Err(CsvError::Malformed {
                record: 2,
                reason: "the record is not UTF-8"
            })
        );
    }

    #[test]
    fn a_broken_input_is_an_error_not_an_early_end() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "reset by peer",
                    ));
                }
                self.0 -= 1;
                buf[..2].copy_from_slice(b"a\n");
                Ok(2)
            }
        }
        let mut reader = CsvReader::new(Broken(2), b',');
        assert!(reader.next_record().expect("first").is_some());
        assert!(reader.next_record().expect("second").is_some());
        assert_eq!(
            reader.next_record().err(),
            Some(CsvError::Io("reset by peer".into()))
        );
    }

    proptest! {
        /// Whatever the csv crate writes (any text, any quoting, either line ending), this
        /// reads back as written.
        #[test]
        fn reads_back_what_a_csv_writer_wrote(
            records in prop::collection::vec(
                prop::collection::vec("[a-z\",\r\n ü🏔\\\\]{0,6}", 1..5),
                0..12,
            ),
            always_quote in any::<bool>(),
            crlf in any::<bool>(),
            step in 1usize..40,
        ) {
            // One empty cell alone is a blank line, which CSV cannot tell from no record;
            // the writer quotes it, and only then.
            let mut writer = csv::WriterBuilder::new()
                .flexible(true)
                .quote_style(if always_quote { csv::QuoteStyle::Always } else { csv::QuoteStyle::Necessary })
                .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                .from_writer(Vec::new());
            for record in &records {
                writer.write_record(record).expect("write");
            }
            let bytes = writer.into_inner().expect("flush");
            prop_assert_eq!(read_all(&bytes, step).expect("readable"), records);
        }
    }
}
