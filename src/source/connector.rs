//! What the backup engine asks of a source. A connector knows its service (its API, its
//! transport, how its records become canonical rows); the engine (`crate::backup`) knows
//! snapshots: which objects to fetch in full and which since when, count checks, what a spent
//! budget leaves, and writing. New kinds of rows (metadata components, file bodies) are new
//! objects of the same connector, fetched into the same sinks.

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::{Map, Value};

use crate::snapshot::sorter::Row;
use crate::store::StoreError;

use super::{
    Connection, Coverage, DeployReport, FieldInfo, ObjectPlan, RecordWrite, SourceError,
    WriteOutcome,
};
use crate::snapshot::components::Component;

/// Files by path.
pub type Files = BTreeMap<String, Vec<u8>>;

/// A record's fields by name.
pub type Record = Map<String, Value>;

/// A file body as it arrives from the source, piece by piece.
pub type BodyStream = std::pin::Pin<
    Box<dyn futures_core::Stream<Item = Result<bytes::Bytes, SourceError>> + Send + 'static>,
>;

/// The bytes of a file being uploaded, piece by piece.
pub type UploadStream = std::pin::Pin<
    Box<
        dyn futures_core::Stream<
                Item = Result<bytes::Bytes, Box<dyn std::error::Error + Send + Sync>>,
            > + Send
            + 'static,
    >,
>;

/// A file body to write with a record: its field, file name and size, and its bytes (asked
/// for again should the request have to be sent again).
pub struct Upload {
    pub field: String,
    pub file_name: String,
    pub size: u64,
    pub bytes: Box<dyn Fn() -> UploadStream + Send + Sync>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upload({} of {} bytes)", self.field, self.size)
    }
}

/// Records by Id as the source holds them: live, or in its recycle bin.
#[derive(Debug, Clone, Default)]
pub struct Held {
    pub live: BTreeMap<String, Record>,
    pub recycled: BTreeMap<String, Record>,
}

/// The account a connector's credentials reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id at the source (a Salesforce org id).
    pub id: String,
    /// Whether it is a sandbox (None: the source has no such notion).
    pub sandbox: Option<bool>,
}

/// Which records of an object a fetch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchWindow {
    /// Every live record (and no tombstones), whatever its last change: a full pass.
    Full,
    /// Every record changed in `(from_ms, to]`, deleted ones as tombstones. `since_ms` is
    /// where the last window ended: `from_ms` reaches back before it (windows overlap), and
    /// rows from the overlap are marked as revisits.
    Changes {
        since_ms: i64,
        from_ms: i64,
        to: String,
    },
}

impl FetchWindow {
    /// Where the last window ended, for an incremental.
    pub fn since_ms(&self) -> Option<i64> {
        match self {
            FetchWindow::Full => None,
            FetchWindow::Changes { since_ms, .. } => Some(*since_ms),
        }
    }
}

/// Where a fetch's rows go: the engine's writer of a new base or of a delta. Moved to and from
/// the connector's parsing threads, so it is owned and sendable.
pub trait RowSink: Send + 'static {
    fn push(&mut self, row: Row) -> Result<(), StoreError>;

    /// Every Id the object has at the source now, for sources that list them all rather than
    /// report deletions (metadata): in an incremental, the parent's others are deleted.
    fn listed(&mut self, ids: std::collections::BTreeSet<String>) {
        let _ = ids;
    }

    /// A row the source knows of but could not give in full (`what`), and why.
    fn left_out(&mut self, what: String, why: String) {
        let _ = (what, why);
    }

    /// How many rows the source says are coming, once it says (for progress only: the
    /// rows that arrive are what counts).
    fn announced(&mut self, total: u64) {
        let _ = total;
    }
}

/// A fetch that failed: at the source, or writing what it had fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub trait Connector: Sync {
    /// The source's kind, as snapshots record it (`salesforce`).
    fn kind(&self) -> &'static str;

    /// The version of the source's API the rows were read with, as snapshots record it.
    fn api_version(&self) -> &str;

    /// Whether the credentials work, and whose account they reach.
    fn check_connection(&self) -> impl Future<Output = Connection> + Send;

    /// Readies the run: learns the API usage the budget starts from.
    fn prepare(&self) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// The account the credentials reach.
    fn account(&self) -> impl Future<Output = Result<Account, SourceError>> + Send;

    /// The objects to back up, chosen by include/exclude globs, and the coverage report.
    fn discover(
        &self,
        include: &[String],
        exclude: &[String],
    ) -> impl Future<Output = Result<(Vec<ObjectPlan>, Coverage), SourceError>> + Send;

    /// The source's clock, as its latest answer said: (earliest, latest) ms it can be now.
    fn server_time_bounds(&self) -> Option<(i64, i64)>;

    /// The object's records in the window, as canonical rows, into `sink`; returns the sink.
    fn fetch<S: RowSink>(
        &self,
        object: &ObjectPlan,
        window: &FetchWindow,
        sink: S,
    ) -> impl Future<Output = Result<S, FetchError>> + Send;

    /// How many records the object had live at `at` (None: the source cannot say).
    fn count(
        &self,
        object: &ObjectPlan,
        at: &str,
    ) -> impl Future<Output = Result<Option<u64>, SourceError>> + Send;

    /// API calls made so far by this connector.
    fn api_calls(&self) -> u64;

    /// The body in `field` of record `id` of `object` (one of the plan's `bodies`), streamed:
    /// one call.
    fn read_body(
        &self,
        object: &str,
        id: &str,
        field: &str,
    ) -> impl Future<Output = Result<BodyStream, SourceError>> + Send {
        let _ = (object, id, field);
        async {
            Err(SourceError::Config(
                "this source keeps no file bodies".into(),
            ))
        }
    }

    /// Creates one record with its file body (one call, the body streamed); the new record's
    /// Id, or why the source refused it.
    fn create_with_body(
        &self,
        object: &str,
        fields: &Record,
        upload: &Upload,
    ) -> impl Future<Output = Result<WriteOutcome, SourceError>> + Send {
        let _ = (object, fields, upload);
        async {
            Err(SourceError::Config(
                "this source keeps no file bodies".into(),
            ))
        }
    }

    /// How many calls `percent` of the task's API budget is (None: the source cannot say,
    /// and only the budget itself bounds the calls).
    fn budget_share(&self, percent: u8) -> Option<u64> {
        let _ = percent;
        None
    }

    // Restore: what the engine in `crate::restore` asks to compare and write records back.

    /// What an object's schema document (as `discover` made it, or `describe` returns it) says
    /// of its fields.
    fn field_infos(&self, schema: &Value) -> BTreeMap<String, FieldInfo>;

    /// The object's schema document as the source describes it now.
    fn describe(&self, object: &str) -> impl Future<Output = Result<Value, SourceError>> + Send;

    /// These records as the source holds them now, with these fields (absent: deleted).
    fn read_records(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, Map<String, Value>>, SourceError>> + Send;

    /// Writes at most `write_batch()` records, each on its own (one refused leaves the others
    /// written); one outcome per record, in order. An error means the batch's fate is unknown.
    fn write_records(
        &self,
        writes: &[RecordWrite],
    ) -> impl Future<Output = Result<Vec<WriteOutcome>, SourceError>> + Send;

    /// How many records one `write_records` call takes.
    fn write_batch(&self) -> usize;

    /// Where these records are now, with these fields: live, in the recycle bin, or (absent
    /// from both) gone for good. Sources that can tell both in one read say so here.
    fn read_state(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> impl Future<Output = Result<Held, SourceError>> + Send {
        async move {
            let live = self.read_records(object, fields, ids).await?;
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !live.contains_key(*id))
                .cloned()
                .collect();
            let recycled = if missing.is_empty() {
                BTreeMap::new()
            } else {
                self.read_recycled(object, fields, &missing).await?
            };
            Ok(Held { live, recycled })
        }
    }

    /// These records as they lie in the source's recycle bin, with these fields: deleted, but
    /// able to come back with their Ids (`undelete`). Absent: live, or gone for good. A source
    /// without a recycle bin has none.
    fn read_recycled(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, Map<String, Value>>, SourceError>> + Send
    {
        let _ = (object, fields, ids);
        async { Ok(BTreeMap::new()) }
    }

    /// Brings at most `undelete_batch()` records back from the recycle bin with their Ids (and
    /// whatever the source brings back with them); one outcome per Id, in order.
    fn undelete(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<WriteOutcome>, SourceError>> + Send {
        let refused = ids
            .iter()
            .map(|_| Err("this source has no recycle bin".to_string()))
            .collect();
        async { Ok(refused) }
    }

    /// The records of `object` the source created at or after `since` (ms since the epoch),
    /// with these fields, by Id: how a restore stopped between sending creates and writing
    /// down their outcome finds what it made. A source that cannot say returns none, and such
    /// writes count as not made.
    fn created_since(
        &self,
        object: &str,
        since: i64,
        fields: &[String],
    ) -> impl Future<Output = Result<Vec<(String, Record)>, SourceError>> + Send {
        let _ = (object, since, fields);
        async { Ok(Vec::new()) }
    }

    /// Objects whose records come into being when one of `object`'s is created (Salesforce: a
    /// ContentVersion makes its ContentDocument). A restore creates `object`'s records before
    /// those of objects that look the made ones up.
    fn makes(&self, object: &str) -> Vec<String> {
        let _ = object;
        Vec::new()
    }

    /// Records the source made alongside the creates so far, as (snapshot Id, new Id), each
    /// given once: a restore rewrites lookups to them as to the records it created.
    fn take_made(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// How many Ids one `undelete` call takes.
    fn undelete_batch(&self) -> usize {
        200
    }

    // Metadata: what restore asks to compare components and deploy them back.

    /// The files these components (as a snapshot holds them) have at the source now, by Id;
    /// absent: the source no longer has the component.
    fn read_components(
        &self,
        components: &[Component],
    ) -> impl Future<Output = Result<BTreeMap<String, Files>, SourceError>> + Send {
        let _ = components;
        async {
            Err(SourceError::Config(
                "this source keeps no metadata components".into(),
            ))
        }
    }

    /// The component's files laid out as the source's own tools lay out a project (Salesforce's
    /// source format): what is committed to the state branch for review. By default, the
    /// files as the snapshot holds them.
    fn source_files(&self, component: &Component) -> Result<Files, String> {
        component.files()
    }

    /// Deploys these components' files as the snapshot holds them; with `check_only` the
    /// source only validates them.
    fn deploy_components(
        &self,
        components: &[Component],
        check_only: bool,
    ) -> impl Future<Output = Result<DeployReport, SourceError>> + Send {
        let _ = (components, check_only);
        async {
            Err(SourceError::Config(
                "this source keeps no metadata components".into(),
            ))
        }
    }

    /// What the source calls an account, for messages ("org" for Salesforce).
    fn account_word(&self) -> &'static str {
        "account"
    }

    /// Whether two account ids name the same account.
    fn same_account(&self, a: &str, b: &str) -> bool {
        a == b
    }
}
