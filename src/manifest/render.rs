//! Diagnostics out: rustc-style text with a source snippet and caret, JSON for scripts, and
//! GitHub Actions workflow commands that annotate pull requests.

use std::collections::HashMap;
use std::fmt::Write as _;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use super::diagnostic::{Diagnostic, Severity};
use super::rules::looks_like_secret;
use super::span::{LineIndex, Pos, Span};

/// The text of a file that diagnostics point into, and the spans that must never be shown
/// (literal secrets): they are masked wherever the file is quoted.
#[derive(Debug, Default, Clone)]
pub struct SourceText {
    pub text: String,
    pub redactions: Vec<Span>,
}

/// Texts by the file names that diagnostics use.
pub type Sources = HashMap<String, SourceText>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Diagnostics with a source snippet, like rustc.
    Text,
    /// One JSON document, for scripts.
    Json,
    /// GitHub Actions workflow commands, which annotate the pull request.
    Github,
}

/// Totals a run ends with.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub tasks: usize,
    pub errors: usize,
    pub warnings: usize,
}

impl Summary {
    pub fn count(diagnostics: &[Diagnostic], files: usize, tasks: usize) -> Self {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        Summary {
            files,
            tasks,
            errors,
            warnings: diagnostics.len() - errors,
        }
    }

    fn line(&self) -> String {
        let tasks = plural(self.tasks, "task");
        if self.errors == 0 {
            let warnings = if self.warnings > 0 {
                format!(", with {}", plural(self.warnings, "warning"))
            } else {
                String::new()
            };
            format!(
                "valid: {} checked ({tasks}){warnings}",
                plural(self.files, "file")
            )
        } else {
            format!(
                "invalid: {} and {} in {} checked ({tasks})",
                plural(self.errors, "error"),
                plural(self.warnings, "warning"),
                plural(self.files, "file"),
            )
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    crate::text::plural(n as u64, word)
}

pub fn render(
    format: Format,
    diagnostics: &[Diagnostic],
    sources: &Sources,
    summary: Summary,
    color: bool,
) -> String {
    match format {
        Format::Text => render_text(diagnostics, sources, summary, color),
        Format::Json => render_json(diagnostics, sources, summary),
        Format::Github => render_github(diagnostics, sources, summary),
    }
}

fn render_text(
    diagnostics: &[Diagnostic],
    sources: &Sources,
    summary: Summary,
    color: bool,
) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for diagnostic in diagnostics {
        let level = match diagnostic.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let title = level
            .primary_title(diagnostic.message.as_str())
            .id(diagnostic.rule);
        let window = diagnostic
            .span
            .zip(sources.get(&diagnostic.file))
            .map(|(span, source)| Window::new(source, span, &diagnostic.related));
        let mut group = match &window {
            Some(window) => Group::with_title(title).element(window.snippet(diagnostic)),
            None => Group::with_title(title)
                .element(annotate_snippets::Origin::path(diagnostic.file.as_str())),
        };
        if let Some(help) = &diagnostic.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        out.push_str(&renderer.render(&[group]));
        out.push_str("\n\n");
    }
    out.push_str(&summary.line());
    out.push('\n');
    out
}

/// The lines a diagnostic quotes, with secrets masked, and its spans as byte ranges in them.
struct Window {
    text: String,
    first_line: usize,
    primary: std::ops::Range<usize>,
    related: Vec<(std::ops::Range<usize>, String)>,
}

impl Window {
    fn new(source: &SourceText, span: Span, related: &[(Span, String)]) -> Self {
        let index = LineIndex::new(&source.text);
        // A block scalar ends at the start of the line after it; show it ending where it ends.
        let span = if span.end.col == 0 && span.end.line > span.start.line {
            let line = span.end.line - 1;
            let range = index.line_range(line);
            Span {
                end: Pos {
                    line,
                    col: source.text[range].chars().count(),
                },
                ..span
            }
        } else {
            span
        };
        let last_line = index.line_count();
        let lines = std::iter::once(span)
            .chain(related.iter().map(|(s, _)| *s))
            .flat_map(|s| [s.start.line, s.end.line]);
        let first_line = lines.clone().min().unwrap_or(1).clamp(1, last_line);
        let end_line = lines.max().unwrap_or(1).clamp(first_line, last_line);
        let mut text = String::new();
        for line in first_line..=end_line {
            let range = index.line_range(line);
            text.push_str(&mask_line(&source.text[range], line, &source.redactions));
            text.push('\n');
        }
        let window_index = LineIndex::new(&text);
        let to_range = |s: Span| {
            let shift = |p: Pos| Pos {
                line: p.line + 1 - first_line,
                col: p.col,
            };
            let start = window_index.offset(shift(s.start));
            let end = window_index.offset(shift(s.end)).max(start);
            start..end
        };
        Window {
            primary: to_range(span),
            related: related
                .iter()
                .map(|(s, label)| (to_range(*s), label.clone()))
                .collect(),
            first_line,
            text,
        }
    }

    fn snippet<'a>(
        &'a self,
        diagnostic: &'a Diagnostic,
    ) -> Snippet<'a, annotate_snippets::Annotation<'a>> {
        let mut snippet = Snippet::source(self.text.as_str())
            .line_start(self.first_line)
            .path(diagnostic.file.as_str())
            .fold(true)
            .annotation(
                AnnotationKind::Primary
                    .span(self.primary.clone())
                    .label(diagnostic.label.as_deref()),
            );
        for (range, label) in &self.related {
            snippet = snippet.annotation(
                AnnotationKind::Context
                    .span(range.clone())
                    .label(label.as_str()),
            );
        }
        snippet
    }
}

/// One line of source with every redacted character, and every word shaped like a credential
/// (even in a comment), replaced by `*`.
fn mask_line(line: &str, number: usize, redactions: &[Span]) -> String {
    let line = mask_secret_words(line);
    let hits: Vec<&Span> = redactions
        .iter()
        .filter(|r| r.start.line <= number && number <= r.end.line)
        .collect();
    if hits.is_empty() {
        return line;
    }
    line.chars()
        .enumerate()
        .map(|(col, c)| {
            let at = Pos { line: number, col };
            let masked = hits.iter().any(|r| {
                r.start <= at && (at < r.end || (r.end.line > number && !c.is_whitespace()))
            });
            if masked && !c.is_whitespace() { '*' } else { c }
        })
        .collect()
}

fn mask_secret_words(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_end);
        let bare = word.trim_matches(|c| matches!(c, '"' | '\'' | ',' | '[' | ']' | '{' | '}'));
        if !bare.is_empty() && looks_like_secret(bare).is_some() {
            out.extend(word.chars().map(|c| if bare.contains(c) { '*' } else { c }));
        } else {
            out.push_str(word);
        }
        let space_end = tail
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(&tail[..space_end]);
        rest = &tail[space_end..];
    }
    out
}

/// Line and column (both 1-based, columns in characters) of a span's first and last character;
/// an empty span covers the character it stands on.
fn one_based(span: Span) -> (usize, usize, usize, usize) {
    let end_col = if span.end.line == span.start.line {
        span.end.col.max(span.start.col + 1)
    } else {
        span.end.col.max(1)
    };
    (span.start.line, span.start.col + 1, span.end.line, end_col)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonDiagnostic<'a> {
    rule: &'static str,
    severity: Severity,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    valid: bool,
    summary: Summary,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

fn render_json(diagnostics: &[Diagnostic], _sources: &Sources, summary: Summary) -> String {
    let report = JsonReport {
        valid: summary.errors == 0,
        summary,
        diagnostics: diagnostics
            .iter()
            .map(|d| {
                let position = d.span.map(one_based);
                JsonDiagnostic {
                    rule: d.rule,
                    severity: d.severity,
                    file: &d.file,
                    line: position.map(|p| p.0),
                    column: position.map(|p| p.1),
                    end_line: position.map(|p| p.2),
                    end_column: position.map(|p| p.3),
                    path: d.pointer.as_deref(),
                    message: &d.message,
                    label: d.label.as_deref(),
                    help: d.help.as_deref(),
                }
            })
            .collect(),
    };
    // Serialising plain data into a String cannot fail.
    let mut out = serde_json::to_string_pretty(&report).unwrap_or_default();
    out.push('\n');
    out
}

fn render_github(diagnostics: &[Diagnostic], _sources: &Sources, summary: Summary) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut properties = format!("file={}", escape_property(&d.file));
        if let Some((line, col, end_line, end_col)) = d.span.map(one_based) {
            let _ = write!(properties, ",line={line},col={col},endLine={end_line}");
            if end_line == line {
                let _ = write!(properties, ",endColumn={end_col}");
            }
        }
        let _ = write!(properties, ",title={}", escape_property(d.rule));
        let mut message = d.message.clone();
        if let Some(label) = &d.label {
            let _ = write!(message, " ({label})");
        }
        if let Some(help) = &d.help {
            let _ = write!(message, "\nhelp: {help}");
        }
        let _ = writeln!(out, "::{command} {properties}::{}", escape_data(&message));
    }
    let _ = writeln!(out, "{}", summary.line());
    out
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_hides_secrets_but_keeps_columns() {
        let span = Span {
            start: Pos { line: 2, col: 10 },
            end: Pos { line: 2, col: 16 },
        };
        assert_eq!(
            mask_line("password: hunter2", 2, &[span]),
            "password: ******2"
        );
        assert_eq!(
            mask_line("password: hunter2", 3, &[span]),
            "password: hunter2"
        );
        assert_eq!(
            mask_line("# old: AKIAIOSFODNN7EXAMPLE, ok", 1, &[]),
            "# old: ********************, ok"
        );
    }

    #[test]
    fn github_commands_escape_their_delimiters() {
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
        assert_eq!(escape_data("one\ntwo"), "one%0Atwo");
    }
}
