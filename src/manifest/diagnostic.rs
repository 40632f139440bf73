//! A problem found in a config repository, with enough to point at it and say what to do.

use serde::Serialize;

use super::span::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding. `rule` is a stable id (`schema/enum`, `secret/literal`, ...) that scripts and
/// documentation can rely on; the texts are for people and may improve.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub rule: &'static str,
    pub severity: Severity,
    /// The file as the user names it (the config directory joined with the repository path).
    pub file: String,
    /// Where in the file; None for a problem with the file as a whole.
    pub span: Option<Span>,
    /// JSON pointer of the offending node inside the document, when there is one.
    pub pointer: Option<String>,
    pub message: String,
    /// Short text under the caret.
    pub label: Option<String>,
    /// What to do next.
    pub help: Option<String>,
    /// Other places that explain this one, such as the first of two duplicate keys.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(rule: &'static str, file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            rule,
            severity: Severity::Error,
            file: file.into(),
            span: None,
            pointer: None,
            message: message.into(),
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(
        rule: &'static str,
        file: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(rule, file, message)
        }
    }

    pub fn at(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Orders diagnostics by file, then position, so output is stable.
    pub fn sort_key(&self) -> (&str, Option<Span>, &'static str) {
        (&self.file, self.span, self.rule)
    }
}

/// How a JSON pointer reads to a person: `/source/auth/jwt` -> `source.auth.jwt`,
/// `/notifications/0/channel` -> `notifications[0].channel`.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&token);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_read_as_dotted_paths() {
        assert_eq!(display_path(""), "");
        assert_eq!(display_path("/source/auth/jwt"), "source.auth.jwt");
        assert_eq!(
            display_path("/notifications/0/channel/email/to/1"),
            "notifications[0].channel.email.to[1]"
        );
        assert_eq!(display_path("/a~1b"), "a/b");
    }
}
