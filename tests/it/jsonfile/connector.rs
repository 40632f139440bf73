//! A connector to a directory of JSON files, one per object: `{"records": [{"Id": …, "Modified":
//! ms, "Deleted": bool, …}]}`. Deliberately tiny, and nothing of it is known outside this
//! folder: the proof that the backup engine drives any `Connector`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn::snapshot::sorter::Row;
use cairn::source::{
    Account, Connection, Connector, Coverage, FetchError, FetchWindow, Field, ObjectPlan, RowSink,
    SourceError,
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
                schema: json!({ "fields": fields.iter().map(|f| &f.name).collect::<Vec<_>>() }),
                name: name.clone(),
                fields,
                incremental: true,
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
}
