//! The SOQL a backup needs: field lists with parent paths, parent-to-child subqueries,
//! semi-joins (`Id IN (SELECT …)`), `toLabel()`, `TYPEOF` on polymorphic lookups, aggregates (COUNT, COUNT_DISTINCT, SUM, AVG,
//! MIN, MAX) with GROUP BY,
//! `FIELDS(ALL|STANDARD|CUSTOM)`,
//! COUNT(), WHERE with comparisons, IN, LIKE, AND/OR/NOT and date literals, ORDER BY, LIMIT
//! and OFFSET. Errors read like
//! Salesforce's (`MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`, with the caret line).
//!
//! Long because it is the parser and the evaluator of one language; its unit tests are at the
//! end.

use super::catalog::{Catalog, FieldType, ObjectDef};
use super::org::{Org, Value};
use sftime as time;

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub object: usize,
    pub select: Select,
    pub filter: Option<Condition>,
    pub order: Vec<(FieldPath, bool, bool)>,
    pub limit: Option<usize>,
    pub offset: usize,
    /// The field list used `FIELDS()` (which the Bulk API does not take).
    pub fields_function: bool,
    /// Parent-to-child subqueries in the field list (`(SELECT Id FROM Contacts)`).
    pub children: Vec<ChildQuery>,
    /// `TYPEOF What WHEN Account THEN Name … END` in the field list.
    pub polymorphic: Vec<TypeOf>,
}

/// A polymorphic lookup's parent, with fields chosen by the type the parent turns out to be.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeOf {
    /// The relationship's name as the describe gives it (`What`), the key in each record.
    pub relationship: String,
    /// The lookup field (`WhatId`).
    pub field: usize,
    /// For each type the parent may be: its fields (WHEN's, or ELSE's for the types no WHEN
    /// names; a type neither names has no entry and renders as its attributes alone).
    pub branches: Vec<(usize, Vec<FieldPath>)>,
}

/// A parent-to-child subquery: the child records of each parent record, through the child's
/// lookup that points at the parent.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildQuery {
    /// The relationship's name as the describe gives it (`Contacts`), the key in each record.
    pub relationship: String,
    /// The child object's lookup field that points at the parent.
    pub field: usize,
    /// The child records' fields, filter, order and limit (`object` is the child object).
    pub query: Query,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    Count,
    Fields(Vec<FieldPath>),
    /// Aggregate functions and GROUP BY: one `AggregateResult` row per group.
    Grouped {
        columns: Vec<Column>,
        group_by: Vec<FieldPath>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl Aggregate {
    fn named(word: &str) -> Option<Aggregate> {
        Some(match word.to_ascii_uppercase().as_str() {
            "COUNT" => Aggregate::Count,
            "COUNT_DISTINCT" => Aggregate::CountDistinct,
            "SUM" => Aggregate::Sum,
            "AVG" => Aggregate::Avg,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            _ => return None,
        })
    }
}

/// A column of an aggregate query's rows, in the order the query names them.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// A GROUP BY field, under its own name.
    Group(FieldPath),
    /// `COUNT(Id)`, under its alias or `expr0`, `expr1`, … in order.
    Aggregate {
        function: Aggregate,
        field: FieldPath,
        name: String,
        /// The call as the query wrote it (`avg(Amount)`): the column's display name.
        written: String,
    },
}

/// A column as read, before the object is known.
enum RawColumn {
    /// Index into the plain fields.
    Field(usize),
    Aggregate {
        function: Aggregate,
        field: (String, usize),
        alias: Option<String>,
        written: String,
    },
}

/// A field of the queried object, or one reached through lookups (`Owner.Name`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    /// As written in the query, with describe casing: `Owner.Name`.
    pub display: String,
    /// (object, lookup field) for each hop, then the final (object, field).
    pub hops: Vec<(usize, usize)>,
    pub field: (usize, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(FieldPath, Op, Literal),
    In(FieldPath, Vec<Literal>, bool),
    /// A semi-join (`Id IN (SELECT AccountId FROM Contact)`), or an anti-join with `NOT IN`:
    /// the subquery runs first and its values stand in as an `In` list (`rest::execute`).
    InQuery(FieldPath, Box<Query>, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
    DateTime(i64),
    Date(i32),
}

/// A query the org refuses, as the REST API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn tokenize(soql: &str) -> Result<Vec<(Token, usize)>, QueryError> {
    let bytes = soql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(malformed(soql, start, "unterminated string"));
                };
                match b {
                    b'\\' => {
                        let escaped = soql[i + 1..]
                            .chars()
                            .next()
                            .ok_or_else(|| malformed(soql, i, "unterminated string"))?;
                        text.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 1 + escaped.len_utf8();
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    _ => {
                        let ch = soql[i..].chars().next().unwrap_or('\0');
                        text.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            tokens.push((Token::Str(text), start));
            continue;
        }
        for sym in ["<=", ">=", "!=", "<>", "(", ")", ",", "=", "<", ">"] {
            if soql[i..].starts_with(sym) {
                tokens.push((Token::Sym(sym), start));
                i += sym.len();
                break;
            }
        }
        if i != start {
            continue;
        }
        if c.is_ascii_digit()
            || ((c == '-' || c == '+') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || matches!(bytes[i], b'.' | b':' | b'-' | b'+'))
            {
                i += 1;
            }
            tokens.push((Token::Num(soql[start..i].to_string()), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b':'))
            {
                i += 1;
            }
            tokens.push((Token::Word(soql[start..i].to_string()), start));
            continue;
        }
        return Err(malformed(soql, start, &format!("unexpected token: '{c}'")));
    }
    Ok(tokens)
}

/// The caret-and-position form of Salesforce's SOQL errors.
fn located(soql: &str, at: usize, text: &str) -> String {
    let at = at.min(soql.len());
    let column = soql[..at].chars().count();
    format!(
        "\n{soql}\n{}^\nERROR at Row:1:Column:{}\n{text}",
        " ".repeat(column),
        column + 1
    )
}

fn malformed(soql: &str, at: usize, text: &str) -> QueryError {
    QueryError {
        code: "MALFORMED_QUERY",
        message: located(soql, at, text),
    }
}

struct Parser<'a> {
    soql: &'a str,
    tokens: Vec<(Token, usize)>,
    pos: usize,
    catalog: &'a Catalog,
    now: i64,
    depth: usize,
}

/// Salesforce refuses to list every link between files and records at once. Links named by
/// their own Ids pass too: the help on "Query All Files" names Id beside the two lookups, and
/// clients read links back by Id (`WHERE Id IN (…)`).
pub const CONTENT_DOCUMENT_LINK_FILTER: &str = "Implementation restriction: ContentDocumentLink requires a filter by a single Id on ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN operator.";

/// Whether every record `condition` lets through has one of `fields` equal to an Id it names:
/// `F = 'id'`, `F IN ('id', …)` or `F IN (SELECT …)`, on its own or ANDed with anything.
fn narrows_to_ids(condition: &Condition, catalog: &Catalog, fields: &[&str]) -> bool {
    let named = |path: &FieldPath| {
        path.hops.is_empty()
            && fields.contains(
                &catalog.objects[path.field.0].fields[path.field.1]
                    .name
                    .as_str(),
            )
    };
    match condition {
        Condition::And(left, right) => {
            narrows_to_ids(left, catalog, fields) || narrows_to_ids(right, catalog, fields)
        }
        Condition::Or(left, right) => {
            narrows_to_ids(left, catalog, fields) && narrows_to_ids(right, catalog, fields)
        }
        Condition::Compare(path, Op::Eq, Literal::Text(_)) => named(path),
        Condition::In(path, _, false) | Condition::InQuery(path, _, false) => named(path),
        _ => false,
    }
}

pub fn parse(soql: &str, catalog: &Catalog, now: i64) -> Result<Query, QueryError> {
    let mut parser = Parser {
        soql,
        tokens: tokenize(soql)?,
        pos: 0,
        catalog,
        now,
        depth: 0,
    };
    parser.query()
}

impl Parser<'_> {
    fn at(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.soql.len(), |(_, at)| *at)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some((Token::Word(w), _)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.peek_word(word);
        if found {
            self.pos += 1;
        }
        found
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        let found = matches!(self.tokens.get(self.pos), Some((Token::Sym(s), _)) if *s == sym);
        if found {
            self.pos += 1;
        }
        found
    }

    fn unexpected(&self) -> QueryError {
        match self.tokens.get(self.pos) {
            Some((token, at)) => {
                let text = match token {
                    Token::Word(w) | Token::Num(w) => w.clone(),
                    Token::Str(s) => format!("'{s}'"),
                    Token::Sym(s) => s.to_string(),
                };
                malformed(self.soql, *at, &format!("unexpected token: '{text}'"))
            }
            None => malformed(self.soql, self.soql.len(), "unexpected token: '<EOF>'"),
        }
    }

    fn word(&mut self) -> Result<(String, usize), QueryError> {
        match self.tokens.get(self.pos) {
            Some((Token::Word(w), at)) => {
                let found = (w.clone(), *at);
                self.pos += 1;
                Ok(found)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        if !self.eat_word("SELECT") {
            return Err(self.unexpected());
        }
        let mut raw_fields = Vec::new();
        let mut count = false;
        // FIELDS(ALL|STANDARD|CUSTOM), expanded once the object is known.
        let mut field_sets: Vec<(String, usize)> = Vec::new();
        // Where each parent-to-child subquery starts, read once the object is known.
        let mut subqueries: Vec<usize> = Vec::new();
        // Where each TYPEOF starts, read once the object is known.
        let mut polymorphic_at: Vec<usize> = Vec::new();
        let mut columns: Vec<RawColumn> = Vec::new();
        loop {
            if let Some(function) = self.aggregate_here() {
                let called = match self.tokens.get(self.pos) {
                    Some((Token::Word(word), _)) => word.clone(),
                    _ => String::new(),
                };
                self.pos += 2;
                let field = self.word()?;
                if !self.eat_sym(")") {
                    return Err(self.unexpected());
                }
                let written = format!("{called}({})", field.0);
                let alias = match self.tokens.get(self.pos) {
                    Some((Token::Word(w), _)) if !w.eq_ignore_ascii_case("FROM") => {
                        let alias = w.clone();
                        self.pos += 1;
                        Some(alias)
                    }
                    _ => None,
                };
                columns.push(RawColumn::Aggregate {
                    function,
                    field,
                    alias,
                    written,
                });
            } else if self.peek_word("COUNT")
                && matches!(self.tokens.get(self.pos + 1), Some((Token::Sym("("), _)))
            {
                self.pos += 2;
                if !self.eat_sym(")") {
                    return Err(self.unexpected());
                }
                count = true;
            } else if self.peek_word("FIELDS")
                && matches!(self.tokens.get(self.pos + 1), Some((Token::Sym("("), _)))
            {
                let at = self.at();
                self.pos += 2;
                let (set, _) = self.word()?;
                let set = set.to_ascii_uppercase();
                if !matches!(set.as_str(), "ALL" | "STANDARD" | "CUSTOM") {
                    return Err(malformed(
                        self.soql,
                        at,
                        "FIELDS() takes ALL, STANDARD or CUSTOM",
                    ));
                }
                if !self.eat_sym(")") {
                    return Err(self.unexpected());
                }
                field_sets.push((set, at));
            } else if self.peek_word("toLabel")
                && matches!(self.tokens.get(self.pos + 1), Some((Token::Sym("("), _)))
            {
                // The picklist's label under the field's own name; the simulator's labels are
                // its values.
                self.pos += 2;
                columns.push(RawColumn::Field(raw_fields.len()));
                raw_fields.push(self.word()?);
                if !self.eat_sym(")") {
                    return Err(self.unexpected());
                }
            } else if self.peek_word("TYPEOF") {
                // Read once the object is known: skip to its END.
                polymorphic_at.push(self.pos);
                while !self.eat_word("END") {
                    if self.pos >= self.tokens.len() {
                        return Err(self.unexpected());
                    }
                    self.pos += 1;
                }
            } else if self.eat_sym("(") {
                // Read once the parent object is known: skip to the matching parenthesis.
                subqueries.push(self.pos);
                let mut level = 1;
                while level > 0 {
                    match self.tokens.get(self.pos) {
                        Some((Token::Sym("("), _)) => level += 1,
                        Some((Token::Sym(")"), _)) => level -= 1,
                        Some(_) => {}
                        None => return Err(self.unexpected()),
                    }
                    self.pos += 1;
                }
            } else {
                columns.push(RawColumn::Field(raw_fields.len()));
                raw_fields.push(self.word()?);
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        if !self.eat_word("FROM") {
            return Err(self.unexpected());
        }
        let (object_name, object_at) = self.word()?;
        let object = self.catalog.object_index(&object_name).ok_or_else(|| QueryError {
            code: "INVALID_TYPE",
            message: located(self.soql, object_at, &format!(
                "sObject type '{object_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
            )),
        })?;
        if !self.catalog.objects[object].queryable {
            return Err(QueryError {
                code: "INVALID_TYPE",
                message: located(
                    self.soql,
                    object_at,
                    &format!(
                        "entity type {} does not support query",
                        self.catalog.objects[object].name
                    ),
                ),
            });
        }
        let mut children = Vec::new();
        let resume = self.pos;
        for start in subqueries {
            self.pos = start;
            children.push(self.child_query(object)?);
        }
        let mut polymorphic = Vec::new();
        for start in polymorphic_at {
            self.pos = start;
            polymorphic.push(self.type_of(object)?);
        }
        self.pos = resume;
        let select = if count {
            let aggregates = columns
                .iter()
                .any(|c| matches!(c, RawColumn::Aggregate { .. }));
            if !raw_fields.is_empty()
                || !field_sets.is_empty()
                || !children.is_empty()
                || !polymorphic.is_empty()
                || aggregates
            {
                return Err(malformed(
                    self.soql,
                    raw_fields.first().map_or(object_at, |f| f.1),
                    "COUNT() cannot be combined with other fields",
                ));
            }
            Select::Count
        } else {
            let mut fields: Vec<FieldPath> = Vec::new();
            for (set, at) in &field_sets {
                for field in &self.catalog.objects[object].fields {
                    let chosen = match set.as_str() {
                        "CUSTOM" => field.custom,
                        "STANDARD" => !field.custom,
                        _ => true,
                    };
                    if chosen && !fields.iter().any(|f| f.display == field.name) {
                        fields.push(self.path(object, &field.name, *at)?);
                    }
                }
            }
            for (name, at) in raw_fields {
                let path = self.path(object, &name, at)?;
                if fields
                    .iter()
                    .any(|f| f.display.eq_ignore_ascii_case(&path.display))
                {
                    return Err(QueryError {
                        code: "MALFORMED_QUERY",
                        message: format!("duplicate field selected: {}", path.display),
                    });
                }
                fields.push(path);
            }
            Select::Fields(fields)
        };
        let filter = if self.eat_word("WHERE") {
            Some(self.or(object)?)
        } else {
            None
        };
        let mut group_by = Vec::new();
        if self.eat_word("GROUP") {
            if !self.eat_word("BY") {
                return Err(self.unexpected());
            }
            loop {
                let (name, at) = self.word()?;
                group_by.push(self.path(object, &name, at)?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let aggregated = columns
            .iter()
            .any(|c| matches!(c, RawColumn::Aggregate { .. }));
        let select = match (aggregated || !group_by.is_empty(), select) {
            (true, Select::Fields(plain)) => {
                if !field_sets.is_empty() || !children.is_empty() || !polymorphic.is_empty() {
                    return Err(malformed(
                        self.soql,
                        object_at,
                        "an aggregate query cannot select FIELDS() or subqueries",
                    ));
                }
                let mut built = Vec::new();
                let mut unnamed = 0;
                for column in columns {
                    match column {
                        RawColumn::Field(index) => {
                            let path = plain[index].clone();
                            if !group_by
                                .iter()
                                .any(|g| g.display.eq_ignore_ascii_case(&path.display))
                            {
                                return Err(malformed(
                                    self.soql,
                                    object_at,
                                    &format!(
                                        "Field must be grouped or aggregated: {}",
                                        path.display
                                    ),
                                ));
                            }
                            built.push(Column::Group(path));
                        }
                        RawColumn::Aggregate {
                            function,
                            field: (name, at),
                            alias,
                            written,
                        } => {
                            let field = self.path(object, &name, at)?;
                            let name = alias.unwrap_or_else(|| {
                                unnamed += 1;
                                format!("expr{}", unnamed - 1)
                            });
                            built.push(Column::Aggregate {
                                function,
                                field,
                                name,
                                written,
                            });
                        }
                    }
                }
                Select::Grouped {
                    columns: built,
                    group_by: group_by.clone(),
                }
            }
            (_, select) => select,
        };
        let order = self.order_by(object)?;
        if let Select::Grouped { group_by, .. } = &select
            && let Some((path, _, _)) = order.iter().find(|(p, _, _)| !group_by.contains(p))
        {
            return Err(malformed(
                self.soql,
                object_at,
                &format!(
                    "ORDER BY {} must be one of the GROUP BY fields",
                    path.display
                ),
            ));
        }
        let mut limit = None;
        let mut offset = 0;
        loop {
            if self.eat_word("LIMIT") {
                limit = Some(self.integer()?);
            } else if self.eat_word("OFFSET") {
                let at = self.at();
                offset = self.integer()?;
                if offset > 2000 {
                    return Err(QueryError {
                        code: "NUMBER_OUTSIDE_VALID_RANGE",
                        message: located(self.soql, at, "Maximum SOQL offset allowed is 2000"),
                    });
                }
            } else {
                break;
            }
        }
        if self.pos < self.tokens.len() {
            return Err(self.unexpected());
        }
        // Unbounded sets of fields need a bounded number of rows.
        if let Some((_, at)) = field_sets.iter().find(|(set, _)| set != "STANDARD")
            && limit.is_none_or(|l| l > 200)
        {
            return Err(malformed(
                self.soql,
                *at,
                "The SOQL FIELDS function must have a LIMIT of at most 200",
            ));
        }
        if self.catalog.objects[object].name == "ContentDocumentLink"
            && !self.catalog.query_all_files
            && !filter.as_ref().is_some_and(|f| {
                narrows_to_ids(
                    f,
                    self.catalog,
                    &["ContentDocumentId", "LinkedEntityId", "Id"],
                )
            })
        {
            return Err(QueryError {
                code: "MALFORMED_QUERY",
                message: CONTENT_DOCUMENT_LINK_FILTER.to_string(),
            });
        }
        Ok(Query {
            object,
            select,
            filter,
            order,
            limit,
            offset,
            fields_function: !field_sets.is_empty(),
            children,
            polymorphic,
        })
    }

    /// `TYPEOF Relationship WHEN Type THEN fields … [ELSE fields] END`, at TYPEOF.
    fn type_of(&mut self, object: usize) -> Result<TypeOf, QueryError> {
        self.pos += 1;
        let (name, at) = self.word()?;
        let found = self.catalog.objects[object]
            .relationship(&name)
            .filter(|(_, f)| f.reference_to.len() > 1);
        let Some((field, lookup)) = found else {
            return Err(QueryError {
                code: "INVALID_FIELD",
                message: located(
                    self.soql,
                    at,
                    &format!(
                        "TYPEOF needs a polymorphic relationship: '{name}' is not one of {}",
                        self.catalog.objects[object].name
                    ),
                ),
            });
        };
        let relationship = lookup.relationship_name.clone().unwrap_or_default();
        let types: Vec<usize> = lookup
            .reference_to
            .iter()
            .filter_map(|t| self.catalog.object_index(t))
            .collect();
        let mut branches: Vec<(usize, Vec<FieldPath>)> = Vec::new();
        while self.eat_word("WHEN") {
            let (type_name, type_at) = self.word()?;
            let Some(&target) = types.iter().find(|&&t| {
                self.catalog.objects[t]
                    .name
                    .eq_ignore_ascii_case(&type_name)
            }) else {
                return Err(malformed(
                    self.soql,
                    type_at,
                    &format!("{relationship} cannot be a {type_name}"),
                ));
            };
            if !self.eat_word("THEN") {
                return Err(self.unexpected());
            }
            let names = self.field_names()?;
            let mut fields = Vec::new();
            for (name, at) in names {
                fields.push(self.path(target, &name, at)?);
            }
            branches.push((target, fields));
        }
        if branches.is_empty() {
            return Err(self.unexpected());
        }
        if self.eat_word("ELSE") {
            let names = self.field_names()?;
            for &other in &types {
                if branches.iter().any(|(t, _)| *t == other) {
                    continue;
                }
                // ELSE's fields on a type that lacks one leave that type out.
                let fields: Option<Vec<FieldPath>> = names
                    .iter()
                    .map(|(name, at)| self.path(other, name, *at).ok())
                    .collect();
                if let Some(fields) = fields {
                    branches.push((other, fields));
                }
            }
        }
        if !self.eat_word("END") {
            return Err(self.unexpected());
        }
        Ok(TypeOf {
            relationship,
            field,
            branches,
        })
    }

    /// `Name, Phone`: field names up to the next keyword.
    fn field_names(&mut self) -> Result<Vec<(String, usize)>, QueryError> {
        let mut names = vec![self.word()?];
        while self.eat_sym(",") {
            names.push(self.word()?);
        }
        Ok(names)
    }

    /// `SELECT … FROM Relationship [WHERE …] [ORDER BY …] [LIMIT n])`, the opening parenthesis
    /// read already.
    fn child_query(&mut self, parent: usize) -> Result<ChildQuery, QueryError> {
        if !self.eat_word("SELECT") {
            return Err(self.unexpected());
        }
        let mut raw_fields = Vec::new();
        loop {
            raw_fields.push(self.word()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        if !self.eat_word("FROM") {
            return Err(self.unexpected());
        }
        let (name, at) = self.word()?;
        let found = self.catalog.child_relationship(parent, &name);
        let Some((child, field, relationship)) = found else {
            return Err(QueryError {
                code: "INVALID_TYPE",
                message: located(
                    self.soql,
                    at,
                    &format!(
                        "Didn't understand relationship '{name}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                ),
            });
        };
        let mut fields: Vec<FieldPath> = Vec::new();
        for (name, at) in raw_fields {
            fields.push(self.path(child, &name, at)?);
        }
        let filter = if self.eat_word("WHERE") {
            Some(self.or(child)?)
        } else {
            None
        };
        let order = self.order_by(child)?;
        let limit = match self.eat_word("LIMIT") {
            true => Some(self.integer()?),
            false => None,
        };
        if !self.eat_sym(")") {
            return Err(self.unexpected());
        }
        Ok(ChildQuery {
            relationship,
            field,
            query: Query {
                object: child,
                select: Select::Fields(fields),
                filter,
                order,
                limit,
                offset: 0,
                fields_function: false,
                children: Vec::new(),
                polymorphic: Vec::new(),
            },
        })
    }

    /// An aggregate function and its parenthesis here (`COUNT(` with a field, not `COUNT()`).
    fn aggregate_here(&self) -> Option<Aggregate> {
        let Some((Token::Word(word), _)) = self.tokens.get(self.pos) else {
            return None;
        };
        let function = Aggregate::named(word)?;
        let opens = matches!(self.tokens.get(self.pos + 1), Some((Token::Sym("("), _)));
        let empty = matches!(self.tokens.get(self.pos + 2), Some((Token::Sym(")"), _)));
        (opens && !empty).then_some(function)
    }

    /// `ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], …`, when there is one.
    fn order_by(&mut self, object: usize) -> Result<Vec<(FieldPath, bool, bool)>, QueryError> {
        let mut order = Vec::new();
        if !self.eat_word("ORDER") {
            return Ok(order);
        }
        if !self.eat_word("BY") {
            return Err(self.unexpected());
        }
        loop {
            let (name, at) = self.word()?;
            let path = self.path(object, &name, at)?;
            let descending = if self.eat_word("DESC") {
                true
            } else {
                self.eat_word("ASC");
                false
            };
            let mut nulls_last = descending;
            if self.eat_word("NULLS") {
                nulls_last = if self.eat_word("LAST") {
                    true
                } else if self.eat_word("FIRST") {
                    false
                } else {
                    return Err(self.unexpected());
                };
            }
            order.push((path, descending, nulls_last));
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(order)
    }

    fn integer(&mut self) -> Result<usize, QueryError> {
        match self.tokens.get(self.pos) {
            Some((Token::Num(n), _)) => {
                let parsed = n.parse().map_err(|_| self.unexpected())?;
                self.pos += 1;
                Ok(parsed)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn path(&self, object: usize, name: &str, at: usize) -> Result<FieldPath, QueryError> {
        let invalid = |entity: &ObjectDef| QueryError {
            code: "INVALID_FIELD",
            message: located(
                self.soql,
                at,
                &format!(
                    "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                    entity.name
                ),
            ),
        };
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() > 6 {
            return Err(invalid(&self.catalog.objects[object]));
        }
        let mut current = object;
        let mut hops = Vec::new();
        let mut display = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let def = &self.catalog.objects[current];
            if i + 1 == parts.len() {
                let (index, field) = def
                    .field(part)
                    .ok_or_else(|| invalid(&self.catalog.objects[object]))?;
                display.push(field.name.clone());
                return Ok(FieldPath {
                    display: display.join("."),
                    hops,
                    field: (current, index),
                });
            }
            let (index, field) = def
                .relationship(part)
                .ok_or_else(|| invalid(&self.catalog.objects[object]))?;
            // A polymorphic lookup's parent fields resolve against its first target, the usual
            // (Name-bearing) one.
            let target = field
                .reference_to
                .iter()
                .find_map(|t| self.catalog.object_index(t))
                .ok_or_else(|| invalid(&self.catalog.objects[object]))?;
            display.push(field.relationship_name.clone().unwrap_or_default());
            hops.push((current, index));
            current = target;
        }
        Err(invalid(&self.catalog.objects[object]))
    }

    fn or(&mut self, object: usize) -> Result<Condition, QueryError> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(malformed(
                self.soql,
                self.at(),
                "the WHERE clause nests too deeply",
            ));
        }
        let mut left = self.and(object)?;
        while self.eat_word("OR") {
            left = Condition::Or(Box::new(left), Box::new(self.and(object)?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self, object: usize) -> Result<Condition, QueryError> {
        let mut left = self.not(object)?;
        while self.eat_word("AND") {
            left = Condition::And(Box::new(left), Box::new(self.not(object)?));
        }
        Ok(left)
    }

    fn not(&mut self, object: usize) -> Result<Condition, QueryError> {
        if self.eat_word("NOT") {
            self.depth += 1;
            if self.depth > 64 {
                return Err(malformed(
                    self.soql,
                    self.at(),
                    "the WHERE clause nests too deeply",
                ));
            }
            let inner = self.not(object)?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        if self.eat_sym("(") {
            let inner = self.or(object)?;
            if !self.eat_sym(")") {
                return Err(self.unexpected());
            }
            return Ok(inner);
        }
        let (name, at) = self.word()?;
        let path = self.path(object, &name, at)?;
        let (field_object, field) = path.field;
        if self.catalog.objects[field_object].fields[field].field_type == FieldType::Base64 {
            return Err(QueryError {
                code: "INVALID_FIELD",
                message: located(
                    self.soql,
                    at,
                    &format!("field '{name}' can not be filtered in query call"),
                ),
            });
        }
        let negated = if self.eat_word("IN") {
            Some(false)
        } else if self.eat_word("NOT") {
            if !self.eat_word("IN") {
                return Err(self.unexpected());
            }
            Some(true)
        } else {
            None
        };
        if let Some(negated) = negated {
            let semi_join = matches!(self.tokens.get(self.pos), Some((Token::Sym("("), _)))
                && matches!(self.tokens.get(self.pos + 1), Some((Token::Word(w), _)) if w.eq_ignore_ascii_case("SELECT"));
            if semi_join {
                let inner = self.semi_join(&path, at)?;
                return Ok(Condition::InQuery(path, Box::new(inner), negated));
            }
            return Ok(Condition::In(path, self.list()?, negated));
        }
        let op = if self.eat_word("LIKE") {
            Op::Like
        } else {
            let op = match self.tokens.get(self.pos) {
                Some((Token::Sym("="), _)) => Op::Eq,
                Some((Token::Sym("!=" | "<>"), _)) => Op::Ne,
                Some((Token::Sym("<"), _)) => Op::Lt,
                Some((Token::Sym("<="), _)) => Op::Le,
                Some((Token::Sym(">"), _)) => Op::Gt,
                Some((Token::Sym(">="), _)) => Op::Ge,
                _ => return Err(self.unexpected()),
            };
            self.pos += 1;
            op
        };
        let literal = self.literal()?;
        Ok(Condition::Compare(path, op, literal))
    }

    /// `(SELECT field FROM Object …)` after IN: one Id or reference field, of which the
    /// outer field must be one too.
    fn semi_join(&mut self, outer: &FieldPath, at: usize) -> Result<Query, QueryError> {
        let start = self.pos + 1;
        let mut level = 0;
        let mut end = self.pos;
        loop {
            match self.tokens.get(end) {
                Some((Token::Sym("("), _)) => level += 1,
                Some((Token::Sym(")"), _)) => {
                    level -= 1;
                    if level == 0 {
                        break;
                    }
                }
                Some(_) => {}
                None => {
                    return Err(malformed(
                        self.soql,
                        self.soql.len(),
                        "unexpected token: '<EOF>'",
                    ));
                }
            }
            end += 1;
        }
        let mut inner = Parser {
            soql: self.soql,
            tokens: self.tokens[start..end].to_vec(),
            pos: 0,
            catalog: self.catalog,
            now: self.now,
            depth: self.depth + 1,
        };
        let query = inner.query()?;
        self.pos = end + 1;
        let is_key = |path: &FieldPath| {
            let (object, field) = path.field;
            matches!(
                self.catalog.objects[object].fields[field].field_type,
                FieldType::Id | FieldType::Reference
            )
        };
        let selected_key = match &query.select {
            Select::Fields(fields) => fields.len() == 1 && is_key(&fields[0]),
            Select::Count | Select::Grouped { .. } => false,
        };
        if !selected_key
            || !query.children.is_empty()
            || !query.polymorphic.is_empty()
            || query.fields_function
        {
            return Err(malformed(
                self.soql,
                self.tokens
                    .get(start)
                    .map_or(self.soql.len(), |(_, at)| *at),
                "a semi-join subquery selects exactly one Id or reference field",
            ));
        }
        if !is_key(outer) {
            return Err(malformed(
                self.soql,
                at,
                "a semi-join compares an Id or reference field",
            ));
        }
        Ok(query)
    }

    fn list(&mut self) -> Result<Vec<Literal>, QueryError> {
        if !self.eat_sym("(") {
            return Err(self.unexpected());
        }
        let mut items = vec![self.literal()?];
        while self.eat_sym(",") {
            items.push(self.literal()?);
        }
        if !self.eat_sym(")") {
            return Err(self.unexpected());
        }
        Ok(items)
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        let Some((token, at)) = self.tokens.get(self.pos).cloned() else {
            return Err(self.unexpected());
        };
        let literal = match token {
            Token::Str(s) => Literal::Text(s),
            Token::Num(n) => {
                if let Some(ms) = time::parse_datetime(&n) {
                    Literal::DateTime(ms)
                } else if let Some(days) = time::parse_date(&n) {
                    Literal::Date(days)
                } else if let Ok(x) = n.parse::<f64>() {
                    Literal::Num(x)
                } else {
                    return Err(malformed(
                        self.soql,
                        at,
                        &format!("line 1:{at} no viable alternative at character '{n}'"),
                    ));
                }
            }
            Token::Word(w) => {
                let upper = w.to_ascii_uppercase();
                let today = (self.now.div_euclid(86_400_000)) as i32;
                match upper.as_str() {
                    "NULL" => Literal::Null,
                    "TRUE" => Literal::Bool(true),
                    "FALSE" => Literal::Bool(false),
                    "TODAY" => Literal::Date(today),
                    "YESTERDAY" => Literal::Date(today - 1),
                    "TOMORROW" => Literal::Date(today + 1),
                    _ => match upper
                        .strip_prefix("LAST_N_DAYS:")
                        .and_then(|n| n.parse::<i32>().ok())
                    {
                        Some(n) => Literal::Date(today - n),
                        None => return Err(self.unexpected()),
                    },
                }
            }
            Token::Sym(_) => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ok(literal)
    }
}

/// Reads a field through its lookups: None when a parent on the way is missing.
pub fn resolve<'o>(
    org: &'o Org,
    record: &'o super::org::Record,
    path: &FieldPath,
) -> Option<std::borrow::Cow<'o, Value>> {
    let mut current = record;
    for &(object, field) in &path.hops {
        let Value::Text(parent_id) = &current.values()[field] else {
            return None;
        };
        let _ = object;
        let parent_object = org.catalog.by_key_prefix(parent_id)?;
        let table = &org.tables[parent_object];
        current = &table.records[table.find(parent_id)?];
    }
    if path.field.1 == super::org::ID {
        return Some(std::borrow::Cow::Owned(Value::Text(current.id().into())));
    }
    if let Some(ms) = current.modstamp(path.field.1) {
        return Some(std::borrow::Cow::Owned(Value::DateTime(ms)));
    }
    if let Some(deleted) = current.deleted_flag(path.field.1) {
        return Some(std::borrow::Cow::Owned(Value::Bool(deleted)));
    }
    current
        .values()
        .get(path.field.1)
        .map(std::borrow::Cow::Borrowed)
}

pub fn matches(org: &Org, record: &super::org::Record, condition: &Condition) -> bool {
    match condition {
        Condition::And(a, b) => matches(org, record, a) && matches(org, record, b),
        Condition::Or(a, b) => matches(org, record, a) || matches(org, record, b),
        Condition::Not(inner) => !matches(org, record, inner),
        Condition::Compare(path, op, literal) => {
            let value = resolve(org, record, path);
            compare(value.as_deref().unwrap_or(&Value::Null), *op, literal)
        }
        Condition::In(path, items, negated) => {
            let value = resolve(org, record, path);
            let value = value.as_deref().unwrap_or(&Value::Null);
            items.iter().any(|l| compare(value, Op::Eq, l)) != *negated
        }
        // Semi-joins are run before the scan and replaced by their values; one that reaches
        // here was not, and matches nothing rather than everything.
        Condition::InQuery(..) => false,
    }
}

fn compare(value: &Value, op: Op, literal: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (value, literal) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => {
            return op == Op::Ne;
        }
        (Value::Text(v), Literal::Text(l)) => {
            if op == Op::Like {
                return like(v, l);
            }
            // Salesforce compares text case-insensitively; 15- and 18-character Ids alike.
            let (v, l) = (v.to_lowercase(), l.to_lowercase());
            if l.len() == 15 && v.len() == 18 {
                Some(v[..15].cmp(&l))
            } else {
                Some(v.cmp(&l))
            }
        }
        (Value::Bool(v), Literal::Bool(l)) => Some(v.cmp(l)),
        (Value::Int(v), Literal::Num(l)) => (*v as f64).partial_cmp(l),
        (Value::Num(v), Literal::Num(l)) => v.partial_cmp(l),
        (Value::DateTime(v), Literal::DateTime(l)) => Some(v.cmp(l)),
        (Value::DateTime(v), Literal::Date(l)) => Some(v.div_euclid(86_400_000).cmp(&(*l as i64))),
        (Value::Date(v), Literal::Date(l)) => Some(v.cmp(l)),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Like => false,
    }
}

/// SOQL LIKE: `%` any run, `_` one character, case-insensitive.
fn like(value: &str, pattern: &str) -> bool {
    let value: Vec<char> = value.to_lowercase().chars().collect();
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let (mut v, mut p) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while v < value.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == value[v]) {
            v += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some(p);
            mark = v;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            v = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == '%' {
        p += 1;
    }
    p == pattern.len()
}

/// Orders two values for ORDER BY (nulls handled by the caller).
pub fn order_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Text(a), Value::Text(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Num(a), Value::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
        (Value::Int(a), Value::Num(b)) => (*a as f64).partial_cmp(b).unwrap_or(Ordering::Equal),
        (Value::Num(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)).unwrap_or(Ordering::Equal),
        (Value::DateTime(a), Value::DateTime(b)) => a.cmp(b),
        (Value::Date(a), Value::Date(b)) => a.cmp(b),
        _ => Ordering::Equal,
    }
}

/// Whether a field can be selected in Bulk API 2.0 (compound fields cannot).
pub fn bulk_selectable(catalog: &Catalog, path: &FieldPath) -> bool {
    catalog.objects[path.field.0].fields[path.field.1].field_type != FieldType::Address
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::standard()
    }

    #[test]
    fn parses_the_backup_query_shapes() {
        let c = catalog();
        let q = parse(
            "SELECT Id, Name, Owner.Name, SystemModstamp FROM account WHERE SystemModstamp > 2024-05-01T00:00:00Z AND SystemModstamp <= 2024-05-02T00:00:00.000Z ORDER BY SystemModstamp ASC, Id ASC LIMIT 10",
            &c,
            0,
        )
        .expect("parses");
        let Select::Fields(fields) = &q.select else {
            panic!("fields")
        };
        assert_eq!(fields[2].display, "Owner.Name");
        assert_eq!(q.order.len(), 2);
        assert_eq!(q.limit, Some(10));
        assert!(matches!(
            parse("SELECT COUNT() FROM Contact", &c, 0).map(|q| q.select),
            Ok(Select::Count)
        ));
        assert!(parse("SELECT Id FROM Task WHERE (Status IN ('Completed') OR NOT Subject LIKE 'Call%') AND ActivityDate = LAST_N_DAYS:30", &c, 0).is_ok());
    }

    #[test]
    fn errors_read_like_salesforce() {
        let c = catalog();
        let e = parse("SELECT Foo FROM Account", &c, 0).unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD");
        assert!(e.message.starts_with("\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity 'Account'."), "{}", e.message);
        let e = parse("SELECT Id FROM Foo", &c, 0).unwrap_err();
        assert_eq!(e.code, "INVALID_TYPE");
        assert!(e.message.contains("sObject type 'Foo' is not supported."));
        assert_eq!(
            parse("SELECT Id, id FROM Account", &c, 0)
                .unwrap_err()
                .message,
            "duplicate field selected: Id"
        );
        assert_eq!(
            parse("SELECT Id FROM Account WHERE", &c, 0)
                .unwrap_err()
                .code,
            "MALFORMED_QUERY"
        );
        assert_eq!(
            parse("SELECT Id FROM Account OFFSET 2001", &c, 0)
                .unwrap_err()
                .code,
            "NUMBER_OUTSIDE_VALID_RANGE"
        );
        let deep = format!(
            "SELECT Id FROM Account WHERE {}Name = 'x'{}",
            "(".repeat(500),
            ")".repeat(500)
        );
        assert_eq!(parse(&deep, &c, 0).unwrap_err().code, "MALFORMED_QUERY");
    }

    #[test]
    fn what_mixes_badly_is_refused_with_a_located_error_never_a_panic() {
        let c = catalog();
        for soql in [
            "SELECT COUNT(), FIELDS(ALL) FROM Account LIMIT 1",
            "SELECT COUNT(), (SELECT Id FROM Contacts) FROM Account",
            "SELECT COUNT(), COUNT(Id) FROM Account",
            "SELECT FIELDS(ALL), COUNT(Id) FROM Account LIMIT 1",
            "SELECT Id FROM Account WHERE Id IN (SELECT LastName FROM Contact)",
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact",
            "SELECT Id, (SELECT Id FROM Contacts FROM Account",
            "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry ORDER BY Name",
        ] {
            let error = parse(soql, &c, 0).expect_err(soql);
            assert!(
                error.code == "MALFORMED_QUERY" || error.code == "INVALID_TYPE",
                "{soql}: {error:?}"
            );
        }
    }

    #[test]
    fn like_follows_soql() {
        assert!(like("Acme Corp", "acme%"));
        assert!(like("Acme Corp", "%CORP"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
    }
}
