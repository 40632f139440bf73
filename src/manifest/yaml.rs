//! YAML text to a JSON value plus the source span of every node.
//!
//! The schema validator speaks JSON and reports JSON pointers; diagnostics need lines and
//! columns. So one pass over saphyr's events builds both, with an explicit stack (no recursion,
//! so deeply nested input cannot overflow ours), and refuses what a manifest never needs:
//! duplicate keys, several documents, custom tags, complex keys, unbounded alias expansion.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

use super::span::{Pos, Span};

/// Nesting deeper than this is refused: no manifest needs it, and it bounds the work on junk.
pub const MAX_DEPTH: usize = 64;
/// Nodes a document may hold after aliases are expanded (stops "billion laughs").
pub const MAX_NODES: usize = 200_000;

/// Where a node is: the span of its key (for mapping values) and of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpans {
    pub key: Option<Span>,
    pub value: Span,
}

/// JSON pointer (RFC 6901) to node spans.
#[derive(Debug, Default)]
pub struct SpanMap {
    spans: HashMap<String, NodeSpans>,
}

impl SpanMap {
    /// Spans of the node at `pointer`, or of its nearest ancestor that has them (nodes that came
    /// from an alias share the alias's span).
    pub fn lookup(&self, pointer: &str) -> Option<(&str, NodeSpans)> {
        let mut current = pointer;
        loop {
            if let Some((key, spans)) = self.spans.get_key_value(current) {
                return Some((key.as_str(), *spans));
            }
            if current.is_empty() {
                return None;
            }
            current = current.rfind('/').map_or("", |i| &current[..i]);
        }
    }

    /// The span a diagnostic about this node points at: the value, or for a container the key
    /// (a multi-line mapping is better shown by its key).
    pub fn value_span(&self, pointer: &str) -> Option<Span> {
        self.lookup(pointer).map(|(_, s)| s.value)
    }

    pub fn key_span(&self, pointer: &str) -> Option<Span> {
        self.lookup(pointer).and_then(|(_, s)| s.key)
    }

    fn insert(&mut self, pointer: String, spans: NodeSpans) {
        self.spans.insert(pointer, spans);
    }
}

/// A parsed YAML document.
#[derive(Debug)]
pub struct Document {
    pub value: Value,
    pub spans: SpanMap,
}

/// Why a text is not a usable YAML document.
#[derive(Debug, Clone, PartialEq)]
pub enum YamlError {
    Syntax { at: Pos, message: String },
    Empty,
    MultipleDocuments { at: Span },
    DuplicateKey { key: String, at: Span, first: Span },
    ComplexKey { at: Span },
    TooDeep { at: Span },
    TooManyNodes { at: Span },
    UnsupportedTag { tag: String, at: Span },
    UnknownAlias { at: Span },
}

/// Escapes one reference token of a JSON pointer.
pub fn escape_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1").into()
    } else {
        token.into()
    }
}

struct MapFrame {
    map: Map<String, Value>,
    pending_key: Option<(String, Span)>,
    seen: HashMap<String, Span>,
    merged: HashSet<String>,
}

enum Container {
    Seq(Vec<Value>),
    Map(MapFrame),
}

struct Frame {
    container: Container,
    pointer: String,
    key_span: Option<Span>,
    start: Span,
    anchor: usize,
    nodes_before: usize,
}

struct Builder {
    stack: Vec<Frame>,
    spans: SpanMap,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    root: Option<Value>,
}

pub fn parse(text: &str) -> Result<Document, YamlError> {
    let mut builder = Builder {
        stack: Vec::new(),
        spans: SpanMap::default(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    let mut documents = 0;
    let text_end = end_of(text);
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError::Syntax {
            at: Pos {
                line: e.marker().line(),
                col: e.marker().col(),
            },
            message: e.info().to_string(),
        })?;
        let span = clamp(Span::from(span), text_end);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError::MultipleDocuments { at: span });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                builder.scalar(&text, style, anchor, tag.as_deref(), span)?
            }
            Event::Alias(id) => builder.alias(id, span)?,
            Event::SequenceStart(anchor, tag) => {
                check_container_tag(tag.as_deref(), "seq", span)?;
                builder.open(Container::Seq(Vec::new()), anchor, span)?
            }
            Event::MappingStart(anchor, tag) => {
                check_container_tag(tag.as_deref(), "map", span)?;
                let frame = MapFrame {
                    map: Map::new(),
                    pending_key: None,
                    seen: HashMap::new(),
                    merged: HashSet::new(),
                };
                builder.open(Container::Map(frame), anchor, span)?
            }
            Event::SequenceEnd | Event::MappingEnd => builder.close(span)?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    match builder.root {
        // `---` alone, or `~`: a document with nothing in it.
        None | Some(Value::Null) => Err(YamlError::Empty),
        Some(value) => Ok(Document {
            value,
            spans: builder.spans,
        }),
    }
}

/// Where the text ends: the parser places implicit empty nodes at end of input one line past
/// the last, and nothing may point outside the file.
fn end_of(text: &str) -> Pos {
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or_default();
    Pos {
        line,
        col: last.chars().count(),
    }
}

fn clamp(span: Span, end: Pos) -> Span {
    Span {
        start: span.start.min(end),
        end: span.end.min(end),
    }
}

fn check_container_tag(tag: Option<&Tag>, expected: &str, span: Span) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(tag) if tag.is_yaml_core_schema() && tag.suffix == expected => Ok(()),
        Some(tag) => Err(YamlError::UnsupportedTag {
            tag: tag.to_string(),
            at: span,
        }),
    }
}

impl Builder {
    /// Where the next node goes: its pointer and its key span. For a mapping awaiting a key,
    /// None: the next scalar is the key.
    fn next_slot(&self) -> Option<(String, Option<Span>)> {
        match self.stack.last() {
            None => Some((String::new(), None)),
            Some(frame) => match &frame.container {
                Container::Seq(items) => Some((format!("{}/{}", frame.pointer, items.len()), None)),
                Container::Map(map) => map.pending_key.as_ref().map(|(key, span)| {
                    (
                        format!("{}/{}", frame.pointer, escape_token(key)),
                        Some(*span),
                    )
                }),
            },
        }
    }

    fn count(&mut self, nodes: usize, span: Span) -> Result<(), YamlError> {
        self.nodes += nodes;
        if self.nodes > MAX_NODES {
            return Err(YamlError::TooManyNodes { at: span });
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<(), YamlError> {
        let Some((pointer, key_span)) = self.next_slot() else {
            return self.key(text, style, span);
        };
        let value = resolve_scalar(text, style, tag, span)?;
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), 1));
        }
        self.place(pointer, key_span, value, 1, span)
    }

    /// Puts a finished node in its slot: counts it against the budget, records where it is,
    /// and attaches it to its parent.
    fn place(
        &mut self,
        pointer: String,
        key: Option<Span>,
        value: Value,
        nodes: usize,
        span: Span,
    ) -> Result<(), YamlError> {
        self.count(nodes, span)?;
        self.spans.insert(pointer, NodeSpans { key, value: span });
        self.attach(value, span)
    }

    fn key(&mut self, text: &str, style: ScalarStyle, span: Span) -> Result<(), YamlError> {
        let Some(Frame {
            container: Container::Map(map),
            ..
        }) = self.stack.last_mut()
        else {
            return Err(YamlError::ComplexKey { at: span });
        };
        let is_merge = text == "<<" && style == ScalarStyle::Plain;
        if !is_merge {
            if let Some(first) = map.seen.get(text) {
                return Err(YamlError::DuplicateKey {
                    key: text.to_string(),
                    at: span,
                    first: *first,
                });
            }
            map.seen.insert(text.to_string(), span);
        }
        map.pending_key = Some((text.to_string(), span));
        Ok(())
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), YamlError> {
        let Some((value, nodes)) = self.anchors.get(&id).cloned() else {
            return Err(YamlError::UnknownAlias { at: span });
        };
        let Some((pointer, key_span)) = self.next_slot() else {
            return Err(YamlError::ComplexKey { at: span });
        };
        self.place(pointer, key_span, value, nodes, span)
    }

    fn open(&mut self, container: Container, anchor: usize, span: Span) -> Result<(), YamlError> {
        let Some((pointer, key_span)) = self.next_slot() else {
            return Err(YamlError::ComplexKey { at: span });
        };
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError::TooDeep { at: span });
        }
        self.count(1, span)?;
        self.stack.push(Frame {
            container,
            pointer,
            key_span,
            start: span,
            anchor,
            nodes_before: self.nodes - 1,
        });
        Ok(())
    }

    fn close(&mut self, end: Span) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let span = Span {
            start: frame.start.start,
            end: end.end.max(frame.start.end),
        };
        let value = match frame.container {
            Container::Seq(items) => Value::Array(items),
            Container::Map(map) => Value::Object(map.map),
        };
        if frame.anchor != 0 {
            let nodes = self.nodes - frame.nodes_before;
            self.anchors.insert(frame.anchor, (value.clone(), nodes));
        }
        // Counted when it was opened.
        self.place(frame.pointer, frame.key_span, value, 0, span)
    }

    fn attach(&mut self, value: Value, span: Span) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        match &mut frame.container {
            Container::Seq(items) => items.push(value),
            Container::Map(map) => {
                let Some((key, key_span)) = map.pending_key.take() else {
                    return Err(YamlError::ComplexKey { at: span });
                };
                if key == "<<" && !map.seen.contains_key("<<") {
                    merge_into(map, value, key_span);
                } else {
                    // An explicit key wins over one brought in by a merge key.
                    map.merged.remove(&key);
                    map.map.insert(key, value);
                }
            }
        }
        Ok(())
    }
}

/// YAML merge keys (`<<: *base`): keys of the merged mapping(s) that the mapping does not set.
fn merge_into(frame: &mut MapFrame, value: Value, key_span: Span) {
    let sources = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for source in sources {
        let Value::Object(source) = source else {
            frame.map.insert("<<".to_string(), source);
            frame.seen.insert("<<".to_string(), key_span);
            continue;
        };
        for (key, value) in source {
            if !frame.map.contains_key(&key) {
                frame.merged.insert(key.clone());
                frame.map.insert(key, value);
            }
        }
    }
}

/// The YAML 1.2 core schema: plain scalars may be null, booleans or numbers; quoted and block
/// scalars are always strings.
fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: Span,
) -> Result<Value, YamlError> {
    if let Some(tag) = tag {
        let unsupported = || YamlError::UnsupportedTag {
            tag: tag.to_string(),
            at: span,
        };
        if !tag.is_yaml_core_schema() {
            // `!` alone is the non-specific tag: a plain string.
            return if tag.handle == "!" && tag.suffix.is_empty() {
                Ok(Value::String(text.to_string()))
            } else {
                Err(unsupported())
            };
        }
        return match tag.suffix.as_str() {
            "str" => Ok(Value::String(text.to_string())),
            "null" => core_null(text)
                .then_some(Value::Null)
                .ok_or_else(unsupported),
            "bool" => core_bool(text).map(Value::Bool).ok_or_else(unsupported),
            "int" => core_int(text).ok_or_else(unsupported),
            "float" => core_float(text)
                .or_else(|| core_int(text))
                .ok_or_else(unsupported),
            _ => Err(unsupported()),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    if core_null(text) {
        return Ok(Value::Null);
    }
    if let Some(b) = core_bool(text) {
        return Ok(Value::Bool(b));
    }
    Ok(core_int(text)
        .or_else(|| core_float(text))
        .unwrap_or_else(|| Value::String(text.to_string())))
}

fn core_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn core_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn core_int(text: &str) -> Option<Value> {
    let (radix, digits) = if let Some(hex) = text.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = text.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, text)
    };
    let unsigned = if radix == 10 {
        digits.strip_prefix(['-', '+']).unwrap_or(digits)
    } else {
        digits
    };
    if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if let Ok(n) = i64::from_str_radix(digits, radix) {
        return Some(Value::Number(n.into()));
    }
    if let Ok(n) = u64::from_str_radix(digits.strip_prefix('+').unwrap_or(digits), radix) {
        return Some(Value::Number(n.into()));
    }
    // Too large for 64 bits: it is read as a float, which the schema's bounds then reject.
    None
}

fn core_float(text: &str) -> Option<Value> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        // JSON has no infinities or NaN; the text stays a string and fails its type check.
        return None;
    }
    let mut chars = unsigned.chars().peekable();
    let mut mantissa_digits = 0;
    while chars.peek().is_some_and(char::is_ascii_digit) {
        chars.next();
        mantissa_digits += 1;
    }
    if chars.peek() == Some(&'.') {
        chars.next();
        while chars.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if matches!(chars.peek(), Some('e' | 'E')) {
        chars.next();
        if matches!(chars.peek(), Some('-' | '+')) {
            chars.next();
        }
        let mut exponent_digits = 0;
        while chars.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
            exponent_digits += 1;
        }
        if exponent_digits == 0 {
            return None;
        }
    }
    if chars.next().is_some() {
        return None;
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span_text(text: &str, span: Span) -> &str {
        let index = super::super::span::LineIndex::new(text);
        &text[index.offset(span.start)..index.offset(span.end)]
    }

    #[test]
    fn values_follow_the_yaml_1_2_core_schema() {
        let doc = parse(
            "a: 1\nb: -2.5\nc: true\nd: ~\ne: 'x'\nf: no\ng: 0x1F\nh: \"1\"\ni: 1e3\nj: 99999999999999999999999\n",
        )
        .unwrap();
        assert_eq!(
            doc.value,
            json!({"a": 1, "b": -2.5, "c": true, "d": null, "e": "x", "f": "no", "g": 31, "h": "1", "i": 1000.0, "j": 1e23})
        );
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "source:\n  environment: prod\nlist:\n  - one\n  - two\n";
        let doc = parse(text).unwrap();
        let env = doc.spans.lookup("/source/environment").unwrap().1;
        assert_eq!(span_text(text, env.key.unwrap()), "environment");
        assert_eq!(span_text(text, env.value), "prod");
        assert_eq!(
            span_text(text, doc.spans.value_span("/list/1").unwrap()),
            "two"
        );
        assert_eq!(
            span_text(text, doc.spans.key_span("/source").unwrap()),
            "source"
        );
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_places() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        let YamlError::DuplicateKey { key, at, first } = err else {
            panic!("expected a duplicate key, got {err:?}")
        };
        assert_eq!(key, "a");
        assert_eq!((at.start.line, first.start.line), (3, 1));
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_does_not_set() {
        let doc = parse("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(doc.value["use"], json!({"x": 1, "y": 3}));
    }

    #[test]
    fn alias_bombs_stop_at_the_node_budget() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(matches!(parse(&text), Err(YamlError::TooManyNodes { .. })));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(100_000);
        assert!(matches!(
            parse(&text),
            Err(YamlError::TooDeep { .. } | YamlError::Syntax { .. })
        ));
    }

    #[test]
    fn empty_and_comment_only_texts_are_empty() {
        assert_eq!(parse("").unwrap_err(), YamlError::Empty);
        assert_eq!(parse("# nothing\n\n").unwrap_err(), YamlError::Empty);
        assert_eq!(parse("---").unwrap_err(), YamlError::Empty);
        assert_eq!(parse("--- ~\n").unwrap_err(), YamlError::Empty);
    }
}
