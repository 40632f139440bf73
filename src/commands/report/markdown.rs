//! The Markdown cairn writes (change summaries: headings, tables, lists, code blocks, `code`
//! and **bold**) as HTML, so the report shows tables and lists rather than their source. Only
//! that subset: the summaries are cairn's own text, with the org's names escaped in them.

use super::escape;

/// `markdown` as HTML; headings start at `<h{top}>`.
pub(super) fn to_html(markdown: &str, top: usize) -> String {
    let mut html = String::new();
    let mut lines = markdown.lines().peekable();
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, html: &mut String| {
        if !paragraph.is_empty() {
            html.push_str(&format!("<p>{}</p>\n", inline(&paragraph.join(" "))));
            paragraph.clear();
        }
    };
    while let Some(line) = lines.next() {
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            flush(&mut paragraph, &mut html);
        } else if let Some(fence) = trimmed.strip_prefix("```") {
            flush(&mut paragraph, &mut html);
            let mut code = String::new();
            for inner in lines.by_ref() {
                if inner.trim_end() == "```" {
                    break;
                }
                code.push_str(inner);
                code.push('\n');
            }
            let class = if fence.is_empty() {
                String::new()
            } else {
                format!(" class=\"language-{}\"", escape(fence))
            };
            html.push_str(&format!(
                "<pre><code{class}>{}</code></pre>\n",
                escape(&code)
            ));
        } else if trimmed.starts_with('#') {
            flush(&mut paragraph, &mut html);
            let level = trimmed.chars().take_while(|c| *c == '#').count();
            let text = trimmed[level..].trim();
            let h = (top + level - 1).min(6);
            html.push_str(&format!("<h{h}>{}</h{h}>\n", inline(text)));
        } else if trimmed.starts_with('|') {
            flush(&mut paragraph, &mut html);
            let mut rows = vec![cells(trimmed)];
            while let Some(next) = lines.peek().filter(|l| l.trim_start().starts_with('|')) {
                rows.push(cells(next.trim()));
                lines.next();
            }
            html.push_str(&table(&rows));
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            flush(&mut paragraph, &mut html);
            html.push_str("<ul>\n");
            html.push_str(&format!("<li>{}</li>\n", inline(item)));
            while let Some(next) = lines.peek().and_then(|l| l.trim_end().strip_prefix("- ")) {
                html.push_str(&format!("<li>{}</li>\n", inline(next)));
                lines.next();
            }
            html.push_str("</ul>\n");
        } else {
            paragraph.push(trimmed);
        }
    }
    flush(&mut paragraph, &mut html);
    html
}

fn cells(row: &str) -> Vec<String> {
    row.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// A table: the first row heads it; a separator row (`|---|---:|`) sets right-aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let separator = |row: &Vec<String>| {
        row.iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
    };
    let right: Vec<bool> = rows
        .get(1)
        .filter(|r| separator(r))
        .map(|r| r.iter().map(|c| c.ends_with(':')).collect())
        .unwrap_or_default();
    let mut html = String::from("<table>\n");
    for (i, row) in rows.iter().enumerate() {
        if separator(row) {
            continue;
        }
        let tag = if i == 0 { "th" } else { "td" };
        html.push_str("<tr>");
        for (c, cell) in row.iter().enumerate() {
            let align = if right.get(c).copied().unwrap_or(false) {
                " class=\"n\""
            } else {
                ""
            };
            html.push_str(&format!("<{tag}{align}>{}</{tag}>", inline(cell)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// `code` and **bold**, in escaped text.
fn inline(text: &str) -> String {
    let escaped = escape(text);
    let mut out = String::with_capacity(escaped.len());
    let mut code = false;
    let mut bold = false;
    let mut rest = escaped.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else if !code && rest.starts_with("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = &rest[2..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn a_change_summary_becomes_headings_a_table_and_lists() {
        let markdown = "# Acme — snapshot 0123\n\n2026-12-01, compared with abcd\n\n## Alerts\n\n- **Contact: 20 deleted**\n\n| object | added | deleted |\n|---|---:|---:|\n| Contact | 0 | 20 |\n| <b>x</b> | 1 | 0 |\n\n## Metadata changes\n\n- M `ApexClass:A` changed\n";
        let html = to_html(markdown, 3);
        assert_eq!(
            html,
            "<h3>Acme — snapshot 0123</h3>\n<p>2026-12-01, compared with abcd</p>\n<h4>Alerts</h4>\n<ul>\n<li><strong>Contact: 20 deleted</strong></li>\n</ul>\n<table>\n<tr><th>object</th><th class=\"n\">added</th><th class=\"n\">deleted</th></tr>\n<tr><td>Contact</td><td class=\"n\">0</td><td class=\"n\">20</td></tr>\n<tr><td>&lt;b&gt;x&lt;/b&gt;</td><td class=\"n\">1</td><td class=\"n\">0</td></tr>\n</table>\n<h4>Metadata changes</h4>\n<ul>\n<li>M <code>ApexClass:A</code> changed</li>\n</ul>\n"
        );
    }

    #[test]
    fn code_blocks_are_kept_as_they_are_escaped() {
        let html = to_html("```diff\n- a <b>\n+ b\n```\n", 3);
        assert_eq!(
            html,
            "<pre><code class=\"language-diff\">- a &lt;b&gt;\n+ b\n</code></pre>\n"
        );
    }
}
