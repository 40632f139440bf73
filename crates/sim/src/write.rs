//! Writes as the platform does them: field-level validation with Salesforce's error codes,
//! timestamps, the recycle bin, master-detail cascades, and an undo journal so a collection
//! call with allOrNone can roll back.
//!
//! Long because field validation covers every field type with its own error code; the last
//! 180 lines are its tests.

use serde_json::{Map, Value as Json};

use super::catalog::{FieldDef, FieldType};
use super::ids;
use super::org::{self, Org, Record, Value, text};
use sftime as time;

/// A record-level failure, as collections report it (`statusCode`) and REST reports it
/// (`errorCode`).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteError {
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl WriteError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>, fields: &[&str]) -> Self {
        WriteError {
            code,
            message: message.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// How to undo one change.
pub enum Undo {
    /// A record was appended to this table.
    Inserted(usize),
    /// This record had these values (and the delete log this many entries).
    Changed(usize, usize, Record, usize),
}

pub type Journal = Vec<Undo>;

pub fn rollback(org: &mut Org, journal: Journal) {
    for undo in journal.into_iter().rev() {
        match undo {
            Undo::Inserted(table) => {
                org.tables[table].records.pop();
                org.tables[table].next_counter -= 1;
            }
            Undo::Changed(table, index, record, deleted_len) => {
                org.tables[table].records[index] = record;
                org.tables[table].deleted.truncate(deleted_len);
            }
        }
    }
}

fn field_error_unknown(object: &str, field: &str) -> WriteError {
    WriteError::new(
        "INVALID_FIELD",
        format!("No such column '{field}' on sobject of type {object}"),
        &[],
    )
}

/// Converts a JSON value for a field, checking its type, length and references.
fn convert(org: &Org, field: &FieldDef, json: &Json) -> Result<Value, WriteError> {
    let name = field.name.as_str();
    if json.is_null() {
        return Ok(Value::Null);
    }
    let mismatch = |expected: &str| {
        WriteError::new(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {expected} from {} value for field {name}",
                kind(json)
            ),
            &[name],
        )
    };
    Ok(match field.field_type {
        FieldType::Boolean => Value::Bool(json.as_bool().ok_or_else(|| mismatch("boolean"))?),
        FieldType::Int => Value::Int(json.as_i64().ok_or_else(|| mismatch("int"))?),
        FieldType::Double | FieldType::Currency | FieldType::Percent => {
            Value::Num(json.as_f64().ok_or_else(|| mismatch("double"))?)
        }
        FieldType::Date => {
            let s = json.as_str().ok_or_else(|| mismatch("date"))?;
            Value::Date(time::parse_date(s).ok_or_else(|| {
                WriteError::new(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    format!("{}: value not of required type: {s}", field.label),
                    &[name],
                )
            })?)
        }
        FieldType::Datetime => {
            let s = json.as_str().ok_or_else(|| mismatch("datetime"))?;
            let ms = time::parse_datetime(s)
                .or_else(|| time::parse_datetime(&s.replace("+0000", "Z")))
                .ok_or_else(|| {
                    WriteError::new(
                        "INVALID_TYPE_ON_FIELD_IN_RECORD",
                        format!("{}: value not of required type: {s}", field.label),
                        &[name],
                    )
                })?;
            Value::DateTime(ms)
        }
        FieldType::Id | FieldType::Reference => {
            let s = json.as_str().ok_or_else(|| mismatch("id"))?;
            let id = ids::normalize(s).ok_or_else(|| {
                WriteError::new(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {s}", field.label),
                    &[name],
                )
            })?;
            let target = org.catalog.by_key_prefix(&id);
            let exists = target.is_some_and(|t| {
                field
                    .reference_to
                    .iter()
                    .any(|r| *r == org.catalog.objects[t].name)
                    && org.tables[t]
                        .find(&id)
                        .is_some_and(|i| !org.tables[t].records[i].is_deleted())
            });
            if !exists {
                return Err(WriteError::new(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    &[name],
                ));
            }
            text(&id)
        }
        FieldType::Base64 => {
            use base64::Engine;
            let encoded = json.as_str().ok_or_else(|| mismatch("base64"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| mismatch("base64"))?;
            Value::Blob(std::sync::Arc::new(super::blob::Blob::Stored(
                bytes.into_boxed_slice(),
            )))
        }
        _ => {
            let s = match json {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                _ => return Err(mismatch("String")),
            };
            if field.length > 0 && s.chars().count() > field.length as usize {
                return Err(WriteError::new(
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {} (max length={})",
                        field.label,
                        s.chars().take(20).collect::<String>(),
                        field.length
                    ),
                    &[name],
                ));
            }
            if field.field_type == FieldType::Email && !s.is_empty() && !valid_email(&s) {
                return Err(WriteError::new(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", field.label),
                    &[name],
                ));
            }
            if s.is_empty() {
                Value::Null
            } else {
                Value::Text(s.into())
            }
        }
    })
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "VALUE_NULL",
        Json::Bool(_) => "VALUE_TRUE",
        Json::Number(_) => "VALUE_NUMBER_INT",
        Json::String(_) => "VALUE_STRING",
        Json::Array(_) => "START_ARRAY",
        Json::Object(_) => "START_OBJECT",
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}

/// Fields a client may not leave empty on insert.
fn required_on_insert(field: &FieldDef) -> bool {
    !field.nillable && field.createable && field.field_type != FieldType::Boolean
}

fn check_fields(
    org: &Org,
    object: usize,
    fields: &Map<String, Json>,
    inserting: bool,
) -> Result<Vec<(usize, Value)>, WriteError> {
    let def = &org.catalog.objects[object];
    let mut changes = Vec::new();
    let mut not_writable = Vec::new();
    for (name, json) in fields {
        if name == "attributes" {
            continue;
        }
        let Some((index, field)) = def.field(name) else {
            return Err(field_error_unknown(&def.name, name));
        };
        let writable = if inserting {
            field.createable
        } else {
            field.updateable
        };
        if !writable || index == org::ID {
            not_writable.push(field.name.clone());
            continue;
        }
        let value = convert(org, field, json)?;
        if value == Value::Null && !field.nillable {
            return Err(WriteError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", field.name),
                &[field.name.as_str()],
            ));
        }
        changes.push((index, value));
    }
    if !not_writable.is_empty() {
        let names: Vec<&str> = not_writable.iter().map(String::as_str).collect();
        return Err(WriteError::new(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                names.join(", ")
            ),
            &names,
        ));
    }
    if inserting {
        let missing: Vec<&str> = def
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                required_on_insert(f) && !changes.iter().any(|(c, v)| c == i && *v != Value::Null)
            })
            .map(|(_, f)| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(WriteError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                &missing,
            ));
        }
    }
    Ok(changes)
}

/// A unique field value another live record already holds.
fn check_unique(
    org: &Org,
    object: usize,
    changes: &[(usize, Value)],
    own_id: Option<&[u8; 18]>,
) -> Result<(), WriteError> {
    let def = &org.catalog.objects[object];
    for (index, value) in changes {
        let field = &def.fields[*index];
        if !field.unique || *value == Value::Null {
            continue;
        }
        let clash = org.tables[object]
            .records
            .iter()
            .find(|r| Some(&r.id) != own_id && r.values()[*index] == *value && !r.is_deleted());
        if let Some(clash) = clash {
            return Err(WriteError::new(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {} duplicates value on record with id: {}",
                    field.name,
                    clash.id()
                ),
                &[field.name.as_str()],
            ));
        }
    }
    Ok(())
}

/// Keeps the read-only Name of people in step with their first and last names.
fn refresh_name(org: &Org, object: usize, values: &mut [Value]) {
    let def = &org.catalog.objects[object];
    let (Some((name, f)), Some((first, _)), Some((last, _))) = (
        def.field("Name"),
        def.field("FirstName"),
        def.field("LastName"),
    ) else {
        return;
    };
    if f.createable {
        return;
    }
    let part = |v: &Value| match v {
        Value::Text(s) => s.to_string(),
        _ => String::new(),
    };
    let full = format!("{} {}", part(&values[first]), part(&values[last]));
    values[name] = text(full.trim());
}

fn stamp(org: &Org, object: usize, values: &mut [Value], created: bool) {
    let def = &org.catalog.objects[object];
    let now = Value::DateTime(org.clock.now());
    let user = text(&org.user_id);
    let stamped: &[(&str, &Value)] = &[
        ("LastModifiedDate", &now),
        ("LastModifiedById", &user),
        ("SystemModstamp", &now),
        ("CreatedDate", &now),
        ("CreatedById", &user),
    ];
    // Some objects lack some of them (ContentDocumentLink keeps only SystemModstamp).
    for (name, value) in &stamped[..if created { 5 } else { 3 }] {
        if let Some((index, _)) = def.field(name) {
            values[index] = (*value).clone();
        }
    }
}

pub fn insert(
    org: &mut Org,
    object: usize,
    fields: &Map<String, Json>,
    journal: &mut Journal,
) -> Result<String, WriteError> {
    insert_with_bodies(org, object, fields, &[], journal)
}

/// As [`insert`], with bodies given as bytes rather than base64 in `fields` (an upload in
/// parts, or a generated file): (field, body).
pub fn insert_with_bodies(
    org: &mut Org,
    object: usize,
    fields: &Map<String, Json>,
    bodies: &[(&str, std::sync::Arc<super::blob::Blob>)],
    journal: &mut Journal,
) -> Result<String, WriteError> {
    // A body given apart stands in the fields as an empty one, for the fields' checks.
    let given;
    let fields = if bodies.is_empty() {
        fields
    } else {
        let mut with_bodies = fields.clone();
        for (field, _) in bodies {
            with_bodies.insert(field.to_string(), Json::String(String::new()));
        }
        given = with_bodies;
        &given
    };
    if !org.catalog.objects[object].createable {
        return Err(WriteError::new(
            "INVALID_TYPE",
            format!(
                "Cannot create records of {}",
                org.catalog.objects[object].name
            ),
            &[],
        ));
    }
    let changes = check_fields(org, object, fields, true)?;
    check_unique(org, object, &changes, None)?;
    super::files::check_new_link(org, object, &changes)?;
    let def = &org.catalog.objects[object];
    let mut values: Vec<Value> = def
        .fields
        .iter()
        .map(|f| {
            if f.field_type == FieldType::Boolean {
                Value::Bool(false)
            } else {
                Value::Null
            }
        })
        .collect();
    values[org::ID] = Value::Null;
    for (index, value) in &changes {
        values[*index] = value.clone();
    }
    for (field, body) in bodies {
        if let Some((index, _)) = def.field(field) {
            values[index] = Value::Blob(body.clone());
        }
    }
    refresh_name(org, object, &mut values);
    stamp(org, object, &mut values, true);
    // A record created without an owner is owned by whoever created it.
    if let Some((owner, _)) = def.field("OwnerId")
        && values[owner] == Value::Null
    {
        values[owner] = text(&org.user_id);
    }
    // Audit fields given on create (allowed only with "Set Audit Fields upon Record Creation",
    // which check_fields enforced through `createable`) stand instead of the stamp.
    for (index, value) in changes {
        if org::SETTABLE_AUDIT_FIELDS.contains(&def.fields[index].name.as_str()) {
            values[index] = value;
        }
    }
    let id = append(org, object, values, journal);
    super::files::on_insert(org, object, &id, journal);
    Ok(id)
}

/// Appends a record under the table's next Id.
fn append(org: &mut Org, object: usize, values: Vec<Value>, journal: &mut Journal) -> String {
    let def = &org.catalog.objects[object];
    let table = &mut org.tables[object];
    table.next_counter += 1;
    let id = ids::record_id(&def.key_prefix, table.next_counter);
    let mut raw = [0u8; 18];
    raw.copy_from_slice(id.as_bytes());
    let modstamp = org::audit_field(def, "SystemModstamp");
    table
        .records
        .push(Record::new(raw, values.into_boxed_slice(), modstamp));
    journal.push(Undo::Inserted(object));
    id
}

/// Creates a record the platform makes on its own (a new file's document and links), stamped
/// now and undone with the write that caused it.
pub(crate) fn insert_derived(
    org: &mut Org,
    object: usize,
    value: impl Fn(&str) -> Value,
    journal: &mut Journal,
) -> String {
    let mut values: Vec<Value> = org.catalog.objects[object]
        .fields
        .iter()
        .map(|f| match value(&f.name) {
            Value::Null if f.field_type == FieldType::Boolean => Value::Bool(false),
            given => given,
        })
        .collect();
    values[org::ID] = Value::Null;
    values[org::IS_DELETED] = Value::Bool(false);
    stamp(org, object, &mut values, true);
    append(org, object, values, journal)
}

/// Sets fields of a record as the platform does (no validation, no new stamps), undoably.
pub(crate) fn set_derived(
    org: &mut Org,
    object: usize,
    index: usize,
    changes: &[(&str, Value)],
    journal: &mut Journal,
) {
    remember(org, object, index, journal);
    let def = &org.catalog.objects[object];
    let mut values = org.tables[object].records[index].values().to_vec();
    for (name, value) in changes {
        if let Some((slot, _)) = def.field(name) {
            values[slot] = value.clone();
        }
    }
    org.tables[object].records[index].set_values(values.into_boxed_slice());
}

fn locate(org: &Org, object: usize, id: &str) -> Result<usize, WriteError> {
    let id = ids::normalize(id)
        .ok_or_else(|| WriteError::new("MALFORMED_ID", format!("malformed id {id}"), &[]))?;
    org.tables[object].find(&id).ok_or_else(|| {
        WriteError::new(
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            &[],
        )
    })
}

fn remember(org: &Org, object: usize, index: usize, journal: &mut Journal) {
    journal.push(Undo::Changed(
        object,
        index,
        org.tables[object].records[index].clone(),
        org.tables[object].deleted.len(),
    ));
}

pub fn update(
    org: &mut Org,
    object: usize,
    id: &str,
    fields: &Map<String, Json>,
    journal: &mut Journal,
) -> Result<(), WriteError> {
    let index = locate(org, object, id)?;
    if org.tables[object].records[index].is_deleted() {
        return Err(WriteError::new(
            "ENTITY_IS_DELETED",
            "entity is deleted",
            &[],
        ));
    }
    let changes = check_fields(org, object, fields, false)?;
    let own = org.tables[object].records[index].id;
    check_unique(org, object, &changes, Some(&own))?;
    remember(org, object, index, journal);
    let mut values = org.tables[object].records[index].values().to_vec();
    for (i, value) in changes {
        values[i] = value;
    }
    refresh_name(org, object, &mut values);
    stamp(org, object, &mut values, false);
    org.tables[object].records[index].set_values(values.into_boxed_slice());
    Ok(())
}

/// Moves a record (and its master-detail children) to the recycle bin.
pub fn delete(
    org: &mut Org,
    object: usize,
    id: &str,
    journal: &mut Journal,
) -> Result<(), WriteError> {
    delete_along(org, object, id, None, journal)
}

/// Deletes a record; `parent` is the record whose delete takes it along, if any.
fn delete_along(
    org: &mut Org,
    object: usize,
    id: &str,
    parent: Option<[u8; 18]>,
    journal: &mut Journal,
) -> Result<(), WriteError> {
    let index = locate(org, object, id)?;
    if org.tables[object].records[index].is_deleted() {
        return Err(WriteError::new(
            "ENTITY_IS_DELETED",
            "entity is deleted",
            &[],
        ));
    }
    let raw = org.tables[object].records[index].id;
    set_deleted(org, object, index, true, journal);
    match parent {
        Some(parent) => org.tables[object].taken_along.insert(raw, parent),
        None => org.tables[object].taken_along.remove(&raw),
    };
    let parent = String::from_utf8_lossy(&raw).into_owned();
    let children: Vec<(usize, String)> = org
        .catalog
        .objects
        .iter()
        .enumerate()
        .flat_map(|(child, def)| {
            def.fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.cascade_delete)
                .map(move |(field, _)| (child, field))
        })
        .flat_map(|(child, field)| {
            org.tables[child]
                .records
                .iter()
                .filter(|r| !r.is_deleted())
                .filter(|r| matches!(&r.values()[field], Value::Text(p) if **p == *parent))
                .map(|r| (child, r.id().to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    for (child, child_id) in children {
        delete_along(org, child, &child_id, Some(raw), journal)?;
    }
    Ok(())
}

pub fn undelete(
    org: &mut Org,
    object: usize,
    id: &str,
    journal: &mut Journal,
) -> Result<(), WriteError> {
    let index = locate(org, object, id)?;
    if !org.tables[object].records[index].is_deleted() {
        return Err(WriteError::new(
            "UNDELETE_FAILED",
            "Entity is not in the recycle bin",
            &[],
        ));
    }
    set_deleted(org, object, index, false, journal);
    // What its delete took along comes back with it (Salesforce's cascade on undelete).
    let raw = org.tables[object].records[index].id;
    let along: Vec<(usize, String)> = org
        .tables
        .iter_mut()
        .enumerate()
        .flat_map(|(table, t)| {
            let children: Vec<[u8; 18]> = t
                .taken_along
                .iter()
                .filter(|(_, parent)| **parent == raw)
                .map(|(child, _)| *child)
                .collect();
            for child in &children {
                t.taken_along.remove(child);
            }
            children
                .into_iter()
                .map(move |child| (table, String::from_utf8_lossy(&child).into_owned()))
        })
        .collect();
    for (table, child) in along {
        let Some(index) = org.tables[table].find(&child) else {
            continue; // purged since
        };
        if org.tables[table].records[index].is_deleted() {
            undelete(org, table, &child, journal)?;
        }
    }
    Ok(())
}

fn set_deleted(org: &mut Org, object: usize, index: usize, deleted: bool, journal: &mut Journal) {
    remember(org, object, index, journal);
    let now = org.clock.now();
    let mut values = org.tables[object].records[index].values().to_vec();
    values[org::IS_DELETED] = Value::Bool(deleted);
    stamp(org, object, &mut values, false);
    let table = &mut org.tables[object];
    let id = table.records[index].id;
    table.records[index].set_values(values.into_boxed_slice());
    if deleted {
        table.deleted.push((id, now));
    } else {
        table.deleted.retain(|(d, _)| *d != id);
    }
}

/// Upsert on an external id field: update the one match, insert when none, refuse when several.
pub fn upsert(
    org: &mut Org,
    object: usize,
    ext_field: &str,
    ext_value: &str,
    fields: &Map<String, Json>,
    journal: &mut Journal,
) -> Result<(String, bool), WriteError> {
    let def = &org.catalog.objects[object];
    let (index, field) = def.field(ext_field).ok_or_else(|| {
        WriteError::new(
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {ext_field}"),
            &[],
        )
    })?;
    if !(field.external_id || index == org::ID) {
        return Err(WriteError::new(
            "INVALID_FIELD",
            format!(
                "Field {} is not an External ID or indexed field for {}",
                field.name, def.name
            ),
            &[],
        ));
    }
    let matches: Vec<String> = org.tables[object]
        .records
        .iter()
        .filter(|r| !r.is_deleted())
        .filter(
            |r| matches!(&r.values()[index], Value::Text(v) if v.eq_ignore_ascii_case(ext_value)),
        )
        .map(|r| r.id().to_string())
        .collect();
    match matches.as_slice() {
        [] => {
            let mut with_key = fields.clone();
            with_key.insert(field.name.clone(), Json::String(ext_value.to_string()));
            insert(org, object, &with_key, journal).map(|id| (id, true))
        }
        [id] => {
            let id = id.clone();
            update(org, object, &id, fields, journal).map(|()| (id, false))
        }
        _ => Err(WriteError::new(
            "MULTIPLE_CHOICES",
            format!("Multiple records found for {}={ext_value}", field.name),
            &[],
        )),
    }
}

/// One record as GET /sobjects/{Obj}/{id} returns it.
pub fn record_json(
    org: &Org,
    object: usize,
    index: usize,
    only: Option<&[String]>,
    version: &str,
) -> Json {
    let def = &org.catalog.objects[object];
    let record = &org.tables[object].records[index];
    let mut map = Map::new();
    map.insert(
        "attributes".into(),
        serde_json::json!({"type": def.name, "url": format!("/services/data/v{version}/{}/{}/{}", def.resource, def.name, record.id())}),
    );
    for (i, field) in def.fields.iter().enumerate() {
        if only.is_some_and(|only| !only.iter().any(|o| o.eq_ignore_ascii_case(&field.name))) {
            continue;
        }
        let value = if i == org::ID {
            Json::String(record.id().to_string())
        } else if field.field_type == FieldType::Address {
            Json::Null
        } else {
            match &record.values()[i] {
                Value::Null => Json::Null,
                Value::Bool(b) => Json::Bool(*b),
                Value::Int(n) => Json::from(*n),
                Value::Num(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
                Value::Text(s) => Json::String(s.to_string()),
                Value::DateTime(ms) => Json::String(time::format_datetime(*ms)),
                Value::Date(d) => Json::String(time::format_date(*d)),
                Value::Blob(_) => Json::String(super::render::blob_url(
                    org,
                    object,
                    record.id(),
                    &field.name,
                    version,
                )),
            }
        };
        map.insert(field.name.clone(), value);
    }
    Json::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{Clock, OrgOptions, Population};
    use serde_json::json;

    fn org() -> Org {
        Org::generate(OrgOptions {
            seed: 5,
            population: Population::spread(200),
            clock: Clock::fixed(1_750_000_000_000),
            ..OrgOptions::default()
        })
    }

    fn fields(value: Json) -> Map<String, Json> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn insert_validates_like_the_platform() {
        let mut org = org();
        let account = org.object_index("Account").expect("Account");
        let mut journal = Vec::new();
        let e = insert(
            &mut org,
            account,
            &fields(json!({"Phone": "1"})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.fields.clone()),
            ("REQUIRED_FIELD_MISSING", vec!["Name".to_string()])
        );
        let e = insert(
            &mut org,
            account,
            &fields(json!({"Name": "x", "SystemModstamp": "2020-01-01T00:00:00Z"})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD_FOR_INSERT_UPDATE");
        let e = insert(
            &mut org,
            account,
            &fields(json!({"Name": "x", "Nope": 1})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD");
        let e = insert(
            &mut org,
            account,
            &fields(json!({"Name": "x", "ParentId": "001000000000000AAA"})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "INVALID_CROSS_REFERENCE_KEY");
        let e = insert(
            &mut org,
            account,
            &fields(json!({"Name": "x", "ParentId": "nope"})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "MALFORMED_ID");
        let e = insert(
            &mut org,
            account,
            &fields(json!({"Name": "x".repeat(256)})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "STRING_TOO_LONG");
        let contact = org.object_index("Contact").expect("Contact");
        let e = insert(
            &mut org,
            contact,
            &fields(json!({"LastName": "x", "Email": "not-an-email"})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "INVALID_EMAIL_ADDRESS");
        assert!(journal.is_empty(), "failed writes change nothing");
        let id = insert(
            &mut org,
            contact,
            &fields(json!({"FirstName": "Ada", "LastName": "Lovelace"})),
            &mut journal,
        )
        .expect("insert");
        let index = org.tables[contact].find(&id).expect("inserted");
        let name = org.catalog.objects[contact].field("Name").expect("Name").0;
        assert_eq!(
            org.tables[contact].records[index].values()[name],
            text("Ada Lovelace")
        );
    }

    #[test]
    fn delete_cascades_to_master_detail_children_and_undelete_restores() {
        let mut org = org();
        let invoice = org.object_index("Invoice__c").expect("Invoice__c");
        let account = org.object_index("Account").expect("Account");
        let master = org.catalog.objects[invoice]
            .field("Account__c")
            .expect("master")
            .0;
        let parent = match &org.tables[invoice].records[0].values()[master] {
            Value::Text(id) => id.to_string(),
            other => panic!("no master: {other:?}"),
        };
        let children = org.tables[invoice]
            .records
            .iter()
            .filter(|r| matches!(&r.values()[master], Value::Text(p) if **p == *parent))
            .count();
        let mut journal = Vec::new();
        delete(&mut org, account, &parent, &mut journal).expect("delete");
        assert_eq!(org.tables[invoice].deleted.len(), children);
        assert_eq!(org.tables[account].deleted.len(), 1);
        let e = update(
            &mut org,
            account,
            &parent,
            &fields(json!({"Name": "y"})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "ENTITY_IS_DELETED");
        rollback(&mut org, journal);
        assert!(org.tables[account].deleted.is_empty() && org.tables[invoice].deleted.is_empty());
        let mut journal = Vec::new();
        delete(&mut org, account, &parent, &mut journal).expect("delete");
        undelete(&mut org, account, &parent, &mut journal).expect("undelete");
        assert!(org.tables[account].deleted.is_empty());
        assert!(
            org.tables[invoice].deleted.is_empty(),
            "the children its delete took along come back with it"
        );

        // A child deleted on its own before its parent stays deleted when the parent returns.
        let child = org.tables[invoice]
            .records
            .iter()
            .find(|r| matches!(&r.values()[master], Value::Text(p) if **p == *parent))
            .map(|r| r.id().to_string())
            .expect("a child");
        delete(&mut org, invoice, &child, &mut journal).expect("delete child");
        delete(&mut org, account, &parent, &mut journal).expect("delete parent");
        assert_eq!(org.tables[invoice].deleted.len(), children);
        undelete(&mut org, account, &parent, &mut journal).expect("undelete");
        assert_eq!(org.tables[invoice].deleted.len(), 1);
        let e = undelete(&mut org, account, &parent, &mut journal).unwrap_err();
        assert_eq!(e.code, "UNDELETE_FAILED");
        undelete(&mut org, invoice, &child, &mut journal).expect("the child on its own");
        assert!(org.tables[invoice].deleted.is_empty());
    }

    #[test]
    fn upsert_inserts_then_updates_and_unique_values_clash() {
        let mut org = org();
        let invoice = org.object_index("Invoice__c").expect("Invoice__c");
        let account_id = org.tables[org.object_index("Account").expect("Account")].records[0]
            .id()
            .to_string();
        let mut journal = Vec::new();
        let body = fields(json!({"Name": "INV-NEW", "Account__c": account_id}));
        let (id, created) = upsert(
            &mut org,
            invoice,
            "Invoice_Number__c",
            "X-1",
            &body,
            &mut journal,
        )
        .expect("insert");
        assert!(created);
        let (again, created) = upsert(
            &mut org,
            invoice,
            "Invoice_Number__c",
            "X-1",
            &fields(json!({"Amount__c": 5.5})),
            &mut journal,
        )
        .expect("update");
        assert_eq!((again.as_str(), created), (id.as_str(), false));
        let e = insert(
            &mut org,
            invoice,
            &fields(json!({"Name": "dup", "Account__c": account_id, "Invoice_Number__c": "X-1"})),
            &mut journal,
        )
        .unwrap_err();
        assert_eq!(e.code, "DUPLICATE_VALUE");
    }
}
