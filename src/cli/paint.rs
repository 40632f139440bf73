//! Colour on what people read: each line is painted by the role its first word gives it (an
//! outcome, an alert, an error, a diff's +/-/M), so every command's text is coloured the same
//! way without its renderer knowing about terminals. Only the marker is painted, never the
//! org's data after it; JSON, Markdown and files are never painted.

use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};

/// Whether stdout and stderr are painted, chosen once from `--color` and NO_COLOR.
static PAINTING: OnceLock<(bool, bool)> = OnceLock::new();

pub(super) fn choose(stdout: bool, stderr: bool) {
    let _ = PAINTING.set((stdout, stderr));
}

pub(super) fn stdout_painted() -> bool {
    PAINTING.get().is_some_and(|p| p.0)
}

pub(super) fn stderr_painted() -> bool {
    PAINTING.get().is_some_and(|p| p.1)
}

const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const GREEN: Style = AnsiColor::Green.on_default();
const BOLD: Style = Style::new().bold();

/// The style of a line's marker, and the marker's length.
fn role(line: &str) -> Option<(Style, usize)> {
    const WORDS: [(&str, Style); 11] = [
        ("FAILED", RED),
        ("ALERT", RED),
        ("error:", RED),
        ("partial", YELLOW),
        ("WARNING", YELLOW),
        ("warning:", YELLOW),
        ("stopped", YELLOW),
        ("success", GREEN),
        ("restore", GREEN),
        ("help:", BOLD),
        ("note:", BOLD),
    ];
    if let Some((word, style)) = WORDS.iter().find(|(w, _)| line.starts_with(w)) {
        return Some((*style, word.len()));
    }
    // A diff's record lines (`+ Id`, `- Id`, `M Id  fields`) and a plan's (`+ create`,
    // `~ update`, `- archive`).
    match line.as_bytes() {
        [b'+', b' ', ..] => Some((GREEN, 1)),
        [b'-', b' ', ..] => Some((RED, 1)),
        [b'M' | b'~', b' ', ..] => Some((YELLOW, 1)),
        _ => None,
    }
}

/// `text` with each line's marker painted.
pub(super) fn paint(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let (lead, rest) = line.split_at(indent);
        match role(rest) {
            Some((style, len)) => {
                let (marker, after) = rest.split_at(len);
                out.push_str(lead);
                out.push_str(&format!("{style}{marker}{style:#}"));
                out.push_str(after);
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::paint;

    #[test]
    fn markers_are_painted_and_data_is_left_as_it_is() {
        let text = "FAILED   acme  the org could not be reached\n  ALERT  Contact: 1440 deleted\n+ 001A\nM 001B  Phone\n  ~ update acme\nplain line\n";
        let painted = paint(text);
        assert!(
            painted.starts_with("\u{1b}[1m\u{1b}[31mFAILED\u{1b}[0m   acme"),
            "{painted:?}"
        );
        assert!(
            painted.contains("  \u{1b}[1m\u{1b}[31mALERT\u{1b}[0m  Contact"),
            "{painted:?}"
        );
        assert!(painted.contains("\u{1b}[32m+\u{1b}[0m 001A"), "{painted:?}");
        assert!(
            painted.contains("\u{1b}[33mM\u{1b}[0m 001B  Phone"),
            "{painted:?}"
        );
        assert!(
            painted.contains("  \u{1b}[33m~\u{1b}[0m update acme"),
            "{painted:?}"
        );
        assert!(painted.ends_with("plain line\n"));
        // Unpainted, the text is byte for byte the same.
        let stripped = painted
            .replace("\u{1b}[1m", "")
            .replace("\u{1b}[31m", "")
            .replace("\u{1b}[32m", "")
            .replace("\u{1b}[33m", "")
            .replace("\u{1b}[0m", "");
        assert_eq!(stripped, text);
    }
}
