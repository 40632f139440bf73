//! A connector to a directory of JSON files, one per object: `{"records": [{"Id": …, "Modified":
//! ms, "Deleted": bool, …}]}`. A field named `<Object>Id` looks up that object's records.
//! Deliberately tiny, and nothing of it is known outside this folder: the proof that the backup
//! and restore engines drive any `Connector`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn::snapshot::sorter::Row;
use cairn::source::{
    Account, Connection, Connector, Coverage, FetchError, FetchWindow, Field, FieldInfo,
    ObjectPlan, RecordWrite, RowSink, SourceError, WriteOutcome,
};
use cairn::text::glob::glob;
use serde_json::{Map, Value, json};

pub struct JsonFiles {
    pub dir: PathBuf,
    calls: AtomicU64,
}

impl JsonFiles {
    pub fn new(dir: PathBuf) -> JsonFiles {
        JsonFiles {
            dir,
            calls: AtomicU64::new(0),
        }
    }

    /// An object's records, sorted by Id; every read is one "call".
    fn records(&self, object: &str) -> Result<Vec<Map<String, Value>>, SourceError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{object}.json"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SourceError::Network(format!("{}: {e}", path.display())))?;
        let file: Value = serde_json::from_str(&text)
            .map_err(|e| SourceError::Config(format!("{}: {e}", path.display())))?;
        let mut records: Vec<Map<String, Value>> = file["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_object().cloned())
            .collect();
        records.sort_by(|a, b| a["Id"].as_str().cmp(&b["Id"].as_str()));
        Ok(records)
    }

    fn save(&self, object: &str, records: Vec<Map<String, Value>>) -> Result<(), SourceError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{object}.json"));
        let text = serde_json::to_vec(&json!({ "records": records }))
            .map_err(|e| SourceError::Config(e.to_string()))?;
        std::fs::write(&path, text)
            .map_err(|e| SourceError::Network(format!("{}: {e}", path.display())))
    }

    /// The schema document of an object with these fields: which can be written, and which
    /// look up another object.
    fn schema(&self, fields: &[Field]) -> Value {
        let fields: Vec<Value> = fields
            .iter()
            .map(|f| {
                let target = f
                    .name
                    .strip_suffix("Id")
                    .filter(|t| !t.is_empty() && self.dir.join(format!("{t}.json")).is_file());
                json!({
                    "name": f.name,
                    "writable": !matches!(f.name.as_str(), "Id" | "Created" | "Modified"),
                    "refersTo": target,
                })
            })
            .collect();
        json!({ "fields": fields })
    }

    /// The object's fields: every key its records have, Id first, in name order.
    fn fields(records: &[Map<String, Value>]) -> Vec<Field> {
        let mut names: Vec<&String> = records
            .iter()
            .flat_map(|r| r.keys())
            .filter(|k| *k != "Id" && *k != "Deleted")
            .collect();
        names.sort();
        names.dedup();
        std::iter::once("Id")
            .chain(names.into_iter().map(String::as_str))
            .map(|name| Field {
                name: name.to_string(),
                kind: "string".into(),
            })
            .collect()
    }
}

impl Connector for JsonFiles {
    fn kind(&self) -> &'static str {
        "jsonfile"
    }

    fn api_version(&self) -> &str {
        "1"
    }

    async fn check_connection(&self) -> Connection {
        match self.dir.is_dir() {
            true => Connection::Connected {
                org_id: "files".into(),
                username: "files".into(),
            },
            false => Connection::Disconnected {
                reason: cairn::source::DisconnectReason::OrgGone,
                detail: format!("{} is gone", self.dir.display()),
            },
        }
    }

    async fn prepare(&self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn account(&self) -> Result<Account, SourceError> {
        Ok(Account {
            id: "files".into(),
            sandbox: None,
        })
    }

    async fn discover(
        &self,
        include: &[String],
        exclude: &[String],
    ) -> Result<(Vec<ObjectPlan>, Coverage), SourceError> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| SourceError::Network(e.to_string()))?
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        let mut plans = Vec::new();
        let mut coverage = Coverage::default();
        for name in names {
            if !include.iter().any(|p| glob(p, &name)) || exclude.iter().any(|p| glob(p, &name)) {
                coverage.excluded.push(name);
                continue;
            }
            let fields = JsonFiles::fields(&self.records(&name)?);
            plans.push(ObjectPlan {
                schema: self.schema(&fields),
                name: name.clone(),
                fields,
                incremental: true,
                always_full: None,
                removals_unseen: false,
                narrowed: None,
                scope: None,
                bodies: Vec::new(),
            });
            coverage.backed_up.push(name);
        }
        Ok((plans, coverage))
    }

    fn server_time_bounds(&self) -> Option<(i64, i64)> {
        None
    }

    async fn fetch<S: RowSink>(
        &self,
        object: &ObjectPlan,
        window: &FetchWindow,
        mut sink: S,
    ) -> Result<S, FetchError> {
        for record in self.records(&object.name)? {
            let stamp = record["Modified"].as_i64().unwrap_or(i64::MIN);
            let deleted = record.get("Deleted").and_then(Value::as_bool) == Some(true);
            let (created, revisit) = match window {
                FetchWindow::Full if deleted => continue,
                FetchWindow::Full => (false, false),
                FetchWindow::Changes {
                    since_ms,
                    from_ms,
                    to,
                } => {
                    let to_ms = cairn::time::parse_datetime(to).unwrap_or(i64::MAX);
                    if stamp <= *from_ms || stamp > to_ms {
                        continue;
                    }
                    let created = record["Created"].as_i64().is_some_and(|c| c > *since_ms);
                    (created, stamp <= *since_ms)
                }
            };
            // The record as the store keeps it: the object's fields in order.
            let body: Map<String, Value> = object
                .fields
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        record.get(&f.name).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect();
            sink.push(Row {
                id: record["Id"].as_str().unwrap_or_default().to_string(),
                deleted,
                created,
                revisit,
                stamp,
                body: if deleted {
                    Vec::new()
                } else {
                    serde_json::to_vec(&body).unwrap_or_default()
                },
            })?;
        }
        Ok(sink)
    }

    async fn count(&self, object: &ObjectPlan, _at: &str) -> Result<Option<u64>, SourceError> {
        let live = self
            .records(&object.name)?
            .iter()
            .filter(|r| r.get("Deleted").and_then(Value::as_bool) != Some(true))
            .count();
        Ok(Some(live as u64))
    }

    fn api_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn field_infos(&self, schema: &Value) -> BTreeMap<String, FieldInfo> {
        schema["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let writable = f["writable"] == true;
                Some((
                    f["name"].as_str()?.to_string(),
                    FieldInfo {
                        createable: writable,
                        updateable: writable,
                        reference_to: f["refersTo"]
                            .as_str()
                            .map(str::to_string)
                            .into_iter()
                            .collect(),
                    },
                ))
            })
            .collect()
    }

    async fn describe(&self, object: &str) -> Result<Value, SourceError> {
        Ok(self.schema(&JsonFiles::fields(&self.records(object)?)))
    }

    async fn read_records(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
        Ok(self
            .records(object)?
            .into_iter()
            .filter(|r| r.get("Deleted").and_then(Value::as_bool) != Some(true))
            .filter_map(|r| {
                let id = r["Id"].as_str()?.to_string();
                ids.contains(&id).then(|| {
                    let wanted = fields
                        .iter()
                        .map(|f| (f.clone(), r.get(f).cloned().unwrap_or(Value::Null)))
                        .collect();
                    (id, wanted)
                })
            })
            .collect())
    }

    async fn write_records(
        &self,
        writes: &[RecordWrite],
    ) -> Result<Vec<WriteOutcome>, SourceError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut outcomes = Vec::new();
        for write in writes {
            let mut records = self.records(&write.object)?;
            let outcome = match &write.id {
                None => {
                    let id = format!("{}{}", write.object.to_lowercase(), records.len() + 1);
                    let mut record = write.fields.clone();
                    record.insert("Id".into(), json!(id));
                    record.insert("Created".into(), json!(now));
                    record.insert("Modified".into(), json!(now));
                    records.push(record);
                    Ok(id)
                }
                Some(id) => match records.iter_mut().find(|r| {
                    r["Id"].as_str() == Some(id)
                        && r.get("Deleted").and_then(Value::as_bool) != Some(true)
                }) {
                    Some(record) => {
                        record.extend(write.fields.clone());
                        record.insert("Modified".into(), json!(now));
                        Ok(id.clone())
                    }
                    None => Err(format!("{} {id} does not exist", write.object)),
                },
            };
            self.save(&write.object, records)?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    fn write_batch(&self) -> usize {
        50
    }
}
