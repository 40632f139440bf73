//! The simulated org's data: compact records per object, kept sorted by Id, with the platform's
//! bookkeeping (timestamps, recycle bin, delete log, API usage) done as Salesforce does it.
//!
//! Long because the org's records and its bookkeeping change together under one lock; the last
//! 100 lines are its tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::blob::Blob;
use super::catalog::{Catalog, FieldType, ObjectDef};
use super::ids;

/// A field value, as small as it can be: an org of a million records must fit in memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Text(Box<str>),
    /// Milliseconds since the Unix epoch, UTC.
    DateTime(i64),
    /// Days since the Unix epoch.
    Date(i32),
    /// A file's body (shared: a record's copy, kept for undo, costs no copy of the bytes).
    Blob(Arc<Blob>),
}

/// One record. `values` follows the object's field order; the Id is kept inline rather than as
/// a string value (slot 0 of `values` stays Null).
///
/// IsDeleted and SystemModstamp are also copied beside the Id, kept in step by the only way to
/// change the values ([`Record::set_values`]): an incremental's window query and count read
/// them for every record, and one sweep over the table is many times faster than one scattered
/// read per record (Salesforce answers such windows from an index).
#[derive(Debug, Clone)]
pub struct Record {
    pub id: [u8; 18],
    values: Box<[Value]>,
    /// IsDeleted, when it is a boolean (it always is for records the org made).
    deleted: Option<bool>,
    /// SystemModstamp's position, and its value when it is a datetime (i64::MIN when not: a
    /// plain i64 keeps a record at 48 bytes, which is what a scan sweeps).
    modstamp_field: u32,
    modstamp: i64,
}

impl Record {
    /// A record with these values; `modstamp_field` is SystemModstamp's position.
    pub fn new(id: [u8; 18], values: Box<[Value]>, modstamp_field: usize) -> Record {
        let mut record = Record {
            id,
            values: Box::new([]),
            deleted: None,
            modstamp_field: modstamp_field as u32,
            modstamp: i64::MIN,
        };
        record.set_values(values);
        record
    }

    pub fn id(&self) -> &str {
        // Ids are minted from ASCII.
        std::str::from_utf8(&self.id).unwrap_or_default()
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Replaces every value (the copies beside the Id follow).
    pub fn set_values(&mut self, values: Box<[Value]>) {
        self.deleted = match values.get(IS_DELETED) {
            Some(Value::Bool(deleted)) => Some(*deleted),
            _ => None,
        };
        self.modstamp = match values.get(self.modstamp_field as usize) {
            Some(Value::DateTime(ms)) if *ms != i64::MIN => *ms,
            _ => i64::MIN,
        };
        self.values = values;
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted == Some(true)
    }

    /// The value of field `field` when it is IsDeleted, read without touching `values`.
    pub fn deleted_flag(&self, field: usize) -> Option<bool> {
        (field == IS_DELETED).then_some(self.deleted).flatten()
    }

    /// The value of field `field` when it is SystemModstamp, read without touching `values`.
    pub fn modstamp(&self, field: usize) -> Option<i64> {
        (field == self.modstamp_field as usize && self.modstamp != i64::MIN)
            .then_some(self.modstamp)
    }
}

/// Field positions every object has (ObjectDef puts them there).
pub const ID: usize = 0;
pub const IS_DELETED: usize = 1;

/// Position of a platform field every object has (custom fields are appended after them, so
/// positions are looked up, not assumed).
pub fn audit_field(def: &ObjectDef, name: &str) -> usize {
    def.field(name).map_or(ID, |(i, _)| i)
}

/// The audit fields "Set Audit Fields upon Record Creation" makes settable on create
/// (SystemModstamp stays the org's own).
pub const SETTABLE_AUDIT_FIELDS: [&str; 4] = [
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
];

#[derive(Debug, Default, Clone)]
pub struct Table {
    /// Sorted by Id; deleted records stay (IsDeleted = true) until purged, like the recycle bin.
    pub records: Vec<Record>,
    /// (Id, deletion time in ms) of deleted records, for getDeleted.
    pub deleted: Vec<([u8; 18], i64)>,
    /// Deleted records that a parent's delete took along (child Id -> parent Id): undeleting
    /// the parent brings them back; those deleted on their own before it stay deleted.
    pub taken_along: std::collections::HashMap<[u8; 18], [u8; 18]>,
    pub next_counter: u64,
    /// Where records moved at each purge: `purges[n][old]` is the position after the n-th
    /// purge of the record that was at `old` before it ([`GONE`] when purged). Records never
    /// move otherwise (new Ids are the largest, so they are appended), which lets query results
    /// hold 4-byte positions instead of copies of Ids.
    purges: Vec<Box<[u32]>>,
}

/// The position of a purged record.
pub const GONE: u32 = u32::MAX;

/// A record's place in its table as of some purge count: what query results hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout(usize);

impl Table {
    /// The table's layout now: positions taken now stay valid through [`Table::position`].
    pub fn layout(&self) -> Layout {
        Layout(self.purges.len())
    }

    /// Where the record that was at `position` in `layout` is now; `None` once purged.
    pub fn position(&self, layout: Layout, position: u32) -> Option<usize> {
        let mut at = position;
        for moved in self.purges.get(layout.0..).unwrap_or_default() {
            at = moved.get(at as usize).copied().unwrap_or(GONE);
        }
        (at != GONE && (at as usize) < self.records.len()).then_some(at as usize)
    }

    /// Removes the records `purge` picks for good (emptying the recycle bin); returns how many.
    pub fn purge(&mut self, purge: impl Fn(&Record) -> bool) -> usize {
        let before = self.records.len();
        let mut moved = Vec::with_capacity(before);
        let mut kept = 0u32;
        for record in &self.records {
            if purge(record) {
                moved.push(GONE);
            } else {
                moved.push(kept);
                kept += 1;
            }
        }
        if kept as usize == before {
            return 0;
        }
        let mut at = 0;
        self.records.retain(|_| {
            at += 1;
            moved[at - 1] != GONE
        });
        self.purges.push(moved.into_boxed_slice());
        before - self.records.len()
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.records
            .binary_search_by(|r| r.id.as_slice().cmp(id.as_bytes()))
            .ok()
    }
}

/// The clock every timestamp comes from; tests and the admin API can fix and move it.
#[derive(Debug, Clone)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { fixed: None }
    }

    pub fn fixed(millis: i64) -> Self {
        Clock {
            fixed: Some(Arc::new(AtomicI64::new(millis))),
        }
    }

    pub fn now(&self) -> i64 {
        match &self.fixed {
            Some(t) => t.load(Ordering::SeqCst),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// Moves a fixed clock (a system clock cannot be moved; it is fixed at now first).
    pub fn set(&mut self, millis: i64) {
        match &self.fixed {
            Some(t) => t.store(millis, Ordering::SeqCst),
            None => self.fixed = Some(Arc::new(AtomicI64::new(millis))),
        }
    }

    pub fn advance(&mut self, millis: i64) {
        let now = self.now();
        self.set(now + millis);
    }
}

/// The rolling daily API allocation, as `/limits` and `Sforce-Limit-Info` report it.
#[derive(Debug, Clone, Copy)]
pub struct ApiUsage {
    pub max: u64,
    pub used: u64,
}

impl ApiUsage {
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

pub struct Org {
    /// Set when the org has been deleted: logins and API calls fail from then on.
    pub gone: bool,
    pub catalog: Catalog,
    pub tables: Vec<Table>,
    pub org_id: String,
    pub user_id: String,
    pub username: String,
    pub is_sandbox: bool,
    pub api: ApiUsage,
    pub clock: Clock,
    /// Documents only their owner (another user) can see: listed to the API user only with
    /// "Query All Files".
    pub private_documents: std::collections::BTreeSet<String>,
}

/// A small deterministic PRNG (splitmix64): the same seed always builds the same org.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Bea", "Chen", "Dara", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kofi", "Lena",
    "Mateo", "Nia", "Omar", "Priya",
];
const LAST_NAMES: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Haddad",
    "Kowalski",
    "Ibrahim",
    "Schmidt",
    "Rossi",
    "Nguyen",
];
const COMPANY_WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
];
const COMPANY_KINDS: &[&str] = &["Corp", "GmbH", "Ltd", "SA", "Inc", "AG", "BV", "Oy"];
const CITIES: &[&str] = &[
    "Paris",
    "Lagos",
    "Osaka",
    "Lima",
    "Oslo",
    "Pune",
    "Austin",
    "Tartu",
    "Zürich",
    "São Paulo",
];

/// How many records of each object a generated org holds.
#[derive(Debug, Clone)]
pub struct Population {
    pub counts: Vec<(String, usize)>,
}

impl Population {
    /// `total` records spread across the objects as a real org spreads them.
    pub fn spread(total: usize) -> Self {
        let shares = [
            ("Account", 20),
            ("Contact", 30),
            ("Opportunity", 15),
            ("Case", 10),
            ("Lead", 8),
            ("Task", 12),
            ("Invoice__c", 5),
            // Files on top: a document (with its versions and links) per 50 records, an
            // attachment per 100.
            ("ContentDocument", 2),
            ("Attachment", 1),
        ];
        Population {
            counts: shares
                .iter()
                .map(|(name, share)| (name.to_string(), total * share / 100))
                .collect(),
        }
    }

    pub fn only(object: &str, count: usize) -> Self {
        Population {
            counts: vec![(object.to_string(), count)],
        }
    }

    fn count(&self, object: &str) -> usize {
        self.counts
            .iter()
            .find(|(name, _)| name == object)
            .map_or(0, |(_, n)| *n)
    }
}

pub struct OrgOptions {
    pub seed: u64,
    pub population: Population,
    pub is_sandbox: bool,
    pub api_max: u64,
    pub clock: Clock,
    /// Metadata components beyond the org's own set (flows, and reports in folders of 100),
    /// for a large org's metadata.
    pub extra_metadata: usize,
    /// How large the generated files are.
    pub file_sizes: super::files::FileSizes,
    /// Whether the API user holds "Query All Files", as a backup user is set up to (a fresh
    /// admin does not: then files it cannot see are left out, and links need a filter).
    pub query_all_files: bool,
}

impl Default for OrgOptions {
    fn default() -> Self {
        OrgOptions {
            seed: 1,
            population: Population::spread(1000),
            is_sandbox: false,
            api_max: 15_000,
            clock: Clock::system(),
            extra_metadata: 0,
            file_sizes: super::files::FileSizes::Small,
            query_all_files: true,
        }
    }
}

pub(crate) const DAY_MS: i64 = 86_400_000;

impl Org {
    /// Grants or withdraws "Set Audit Fields upon Record Creation" for the API user.
    pub fn set_audit_fields(&mut self, on: bool) {
        for object in self.catalog.objects.iter_mut().filter(|o| o.createable) {
            for field in object
                .fields
                .iter_mut()
                .filter(|f| SETTABLE_AUDIT_FIELDS.contains(&f.name.as_str()))
            {
                field.createable = on;
            }
        }
    }

    pub fn audit_fields_settable(&self) -> bool {
        self.catalog
            .objects
            .iter()
            .filter(|o| o.createable)
            .flat_map(|o| o.fields.iter())
            .any(|f| f.name == "CreatedDate" && f.createable)
    }

    pub fn generate(options: OrgOptions) -> Org {
        let catalog = Catalog::standard();
        let mut rng = Rng::new(options.seed);
        let now = options.clock.now();
        let org_id = String::new(); // the Organization record's Id, set below
        let mut org = Org {
            gone: false,
            tables: vec![Table::default(); catalog.objects.len()],
            catalog,
            user_id: String::new(),
            username: String::new(),
            org_id,
            is_sandbox: options.is_sandbox,
            api: ApiUsage {
                max: options.api_max,
                used: 0,
            },
            clock: options.clock,
            private_documents: Default::default(),
        };
        org.catalog.query_all_files = options.query_all_files;
        let suffix = if options.is_sandbox { ".uat" } else { "" };
        org.username = format!("backup@acme.example{suffix}");
        let users: Vec<String> = (0..8)
            .map(|i| {
                let first = FIRST_NAMES[i % FIRST_NAMES.len()];
                let last = LAST_NAMES[i % LAST_NAMES.len()];
                let username = if i == 0 {
                    org.username.clone()
                } else {
                    format!(
                        "{}.{}@acme.example{suffix}",
                        first.to_lowercase(),
                        last.to_lowercase()
                    )
                };
                org.insert_generated("User", now - 400 * DAY_MS, |name| match name {
                    "Username" => text(&username),
                    "Name" => text(&format!("{first} {last}")),
                    "FirstName" => text(first),
                    "LastName" => text(last),
                    "Email" => text(&format!("{}@acme.example", first.to_lowercase())),
                    "IsActive" => Value::Bool(true),
                    _ => Value::Null,
                })
            })
            .collect();
        org.user_id = users[0].clone();
        let org_name = if options.is_sandbox {
            "Acme (UAT sandbox)"
        } else {
            "Acme"
        };
        let is_sandbox = options.is_sandbox;
        // Orgs of different seeds have different ids, as two real orgs do.
        if let Some(index) = org.catalog.object_index("Organization") {
            org.tables[index].next_counter = options.seed % 100_000;
        }
        let org_record =
            org.insert_generated("Organization", now - 800 * DAY_MS, |name| match name {
                "Name" => text(org_name),
                "IsSandbox" => Value::Bool(is_sandbox),
                "OrganizationType" => text("Enterprise Edition"),
                "InstanceName" => text(if is_sandbox { "CS42" } else { "EU45" }),
                _ => Value::Null,
            });
        // The Organization record's Id is the org id.
        org.org_id = org_record;

        let population = options.population;
        let mut parents: Vec<(&str, Vec<String>)> = Vec::new();
        for object in [
            "Account",
            "Contact",
            "Lead",
            "Opportunity",
            "Case",
            "Invoice__c",
            "Task",
        ] {
            let count = population.count(object);
            let mut made = Vec::with_capacity(count.min(1 << 20));
            for i in 0..count {
                let created =
                    now - (rng.below(700) as i64 + 1) * DAY_MS - rng.below(DAY_MS as u64) as i64;
                let pick_parent = |rng: &mut Rng, object: &str| -> Value {
                    parents
                        .iter()
                        .find(|(name, _)| *name == object)
                        .filter(|(_, ids)| !ids.is_empty())
                        .map_or(Value::Null, |(_, ids)| {
                            text(&ids[rng.below(ids.len() as u64) as usize])
                        })
                };
                let owner = text(&users[rng.below(users.len() as u64) as usize]);
                let first = rng.pick(FIRST_NAMES);
                let last = rng.pick(LAST_NAMES);
                let company = format!(
                    "{} {} {}",
                    rng.pick(COMPANY_WORDS),
                    rng.pick(COMPANY_KINDS),
                    i
                );
                let mut fields: Vec<(&str, Value)> = vec![("OwnerId", owner)];
                match object {
                    "Account" => {
                        fields.extend([
                            ("Name", text(&company)),
                            (
                                "Type",
                                text(rng.pick(&["Prospect", "Customer - Direct", "Partner"])),
                            ),
                            (
                                "Industry",
                                text(rng.pick(&["Banking", "Energy", "Retail", "Technology"])),
                            ),
                            (
                                "AnnualRevenue",
                                Value::Num((rng.below(500_000) * 1000) as f64),
                            ),
                            ("NumberOfEmployees", Value::Int(rng.below(20_000) as i64)),
                            ("Phone", text(&format!("+1 555 {:04}", rng.below(10_000)))),
                            ("Website", text(&format!("https://www.example.com/{i}"))),
                            (
                                "BillingStreet",
                                text(&format!("{} Main Street", 1 + rng.below(999))),
                            ),
                            ("BillingCity", text(rng.pick(CITIES))),
                            (
                                "BillingPostalCode",
                                text(&format!("{:05}", rng.below(99_999))),
                            ),
                            (
                                "BillingCountry",
                                text(rng.pick(&[
                                    "FR", "NG", "JP", "PE", "NO", "IN", "US", "EE", "CH", "BR",
                                ])),
                            ),
                        ]);
                        if i > 10 && rng.below(10) == 0 {
                            fields.push(("ParentId", pick_parent(&mut rng, "Account")));
                        }
                    }
                    "Contact" => fields.extend([
                        ("AccountId", pick_parent(&mut rng, "Account")),
                        ("Name", text(&format!("{first} {last}"))),
                        ("FirstName", text(first)),
                        ("LastName", text(last)),
                        (
                            "Email",
                            text(&format!(
                                "{}.{}{i}@example.com",
                                first.to_lowercase(),
                                last.to_lowercase()
                            )),
                        ),
                        (
                            "Title",
                            text(rng.pick(&["CFO", "Buyer", "Engineer", "Director"])),
                        ),
                        ("Birthdate", Value::Date((3000 + rng.below(12_000)) as i32)),
                        ("HasOptedOutOfEmail", Value::Bool(rng.below(5) == 0)),
                    ]),
                    "Lead" => fields.extend([
                        ("Name", text(&format!("{first} {last}"))),
                        ("FirstName", text(first)),
                        ("LastName", text(last)),
                        ("Company", text(&company)),
                        (
                            "Email",
                            text(&format!("{}{i}@lead.example.com", last.to_lowercase())),
                        ),
                        ("Status", text("Open - Not Contacted")),
                    ]),
                    "Opportunity" => fields.extend([
                        ("AccountId", pick_parent(&mut rng, "Account")),
                        ("Name", text(&format!("{company} renewal"))),
                        (
                            "StageName",
                            text(rng.pick(&[
                                "Prospecting",
                                "Proposal",
                                "Closed Won",
                                "Closed Lost",
                            ])),
                        ),
                        ("Amount", Value::Num((rng.below(200_000) * 10) as f64)),
                        ("Probability", Value::Num(rng.below(101) as f64)),
                        (
                            "CloseDate",
                            Value::Date(((now / DAY_MS) as i32) + rng.below(180) as i32 - 90),
                        ),
                        ("IsClosed", Value::Bool(false)),
                    ]),
                    "Case" => fields.extend([
                        ("AccountId", pick_parent(&mut rng, "Account")),
                        ("ContactId", pick_parent(&mut rng, "Contact")),
                        (
                            "Subject",
                            text(&format!(
                                "Case {i}: {}",
                                rng.pick(&["login fails", "invoice wrong", "slow export"])
                            )),
                        ),
                        ("Status", text(rng.pick(&["New", "Working", "Closed"]))),
                        ("Priority", text(rng.pick(&["High", "Medium", "Low"]))),
                    ]),
                    "Invoice__c" => fields.extend([
                        ("Name", text(&format!("INV-{i:06}"))),
                        ("Account__c", pick_parent(&mut rng, "Account")),
                        ("Invoice_Number__c", text(&format!("N{:08}", i))),
                        ("Amount__c", Value::Num((rng.below(100_000)) as f64 / 100.0)),
                        ("Status__c", text(rng.pick(&["Draft", "Sent", "Paid"]))),
                    ]),
                    "Task" => {
                        let who = if rng.below(2) == 0 { "Contact" } else { "Lead" };
                        let what = *["Account", "Opportunity", "Case"]
                            .get(rng.below(3) as usize)
                            .unwrap_or(&"Account");
                        fields.extend([
                            (
                                "Subject",
                                text(rng.pick(&["Call", "Email", "Send quote", "Follow up"])),
                            ),
                            (
                                "Status",
                                text(rng.pick(&["Not Started", "In Progress", "Completed"])),
                            ),
                            ("WhoId", pick_parent(&mut rng, who)),
                            ("WhatId", pick_parent(&mut rng, what)),
                        ]);
                    }
                    _ => {}
                }
                if object == "Invoice__c"
                    && matches!(
                        fields.iter().find(|(n, _)| *n == "Account__c"),
                        Some((_, Value::Null))
                    )
                {
                    // A master-detail child needs its master.
                    continue;
                }
                let id = org.insert_generated(object, created, |name| {
                    fields
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or(Value::Null, |(_, v)| v.clone())
                });
                if matches!(
                    object,
                    "Account" | "Contact" | "Lead" | "Opportunity" | "Case"
                ) {
                    made.push(id);
                }
            }
            parents.push((object, made));
        }
        let shared_on: Vec<String> = parents
            .iter()
            .filter(|(name, _)| matches!(*name, "Account" | "Opportunity" | "Case"))
            .flat_map(|(_, ids)| ids.iter().cloned())
            .collect();
        super::files::generate(
            &mut org,
            &mut rng,
            population.count("ContentDocument"),
            population.count("Attachment"),
            &shared_on,
            &users,
            options.file_sizes,
        );
        org
    }

    /// Appends a generated record created at `created` (and last modified some time after).
    pub(crate) fn insert_generated(
        &mut self,
        object: &str,
        created: i64,
        value: impl Fn(&str) -> Value,
    ) -> String {
        let Some(index) = self.catalog.object_index(object) else {
            return String::new();
        };
        let def = &self.catalog.objects[index];
        let table = &mut self.tables[index];
        table.next_counter += 1;
        let id = ids::record_id(&def.key_prefix, table.next_counter);
        // Last modified up to 30 days after creation, and never after now: clamping instead
        // would stamp ~2% of a large org with the very instant it was generated, a pile-up
        // no real org has.
        let span = (self.clock.now() - created).clamp(1, DAY_MS * 30);
        let modified = created + (table.next_counter as i64 * 7919) % span;
        let values: Box<[Value]> = def
            .fields
            .iter()
            .enumerate()
            .map(
                |(i, field)| match (i, field.name.as_str(), field.field_type) {
                    (ID, _, _) => Value::Null,
                    (IS_DELETED, _, _) => Value::Bool(false),
                    (_, "CreatedDate", _) => Value::DateTime(created),
                    (_, "LastModifiedDate" | "SystemModstamp", _) => Value::DateTime(modified),
                    (_, "CreatedById" | "LastModifiedById", _) => {
                        if self.user_id.is_empty() {
                            Value::Null
                        } else {
                            text(&self.user_id)
                        }
                    }
                    (_, _, FieldType::Address) => Value::Null,
                    (_, name, _) => value(name),
                },
            )
            .collect();
        let mut raw = [0u8; 18];
        raw.copy_from_slice(id.as_bytes());
        let modstamp = audit_field(def, "SystemModstamp");
        table.records.push(Record::new(raw, values, modstamp));
        id
    }

    pub fn object_index(&self, name: &str) -> Option<usize> {
        self.catalog.object_index(name)
    }

    /// Whether the API user sees the record: a file kept private by another user (its
    /// document, versions and links) is listed only with "Query All Files", with no error
    /// otherwise, as Salesforce leaves such files out.
    pub fn visible(&self, object: usize, record: &Record) -> bool {
        if self.private_documents.is_empty() || self.catalog.query_all_files {
            return true;
        }
        let def = &self.catalog.objects[object];
        let document = match def.name.as_str() {
            "ContentDocument" => Some(record.id()),
            "ContentVersion" | "ContentDocumentLink" => {
                def.field("ContentDocumentId")
                    .and_then(|(slot, _)| match &record.values()[slot] {
                        Value::Text(document) => Some(&**document),
                        _ => None,
                    })
            }
            _ => None,
        };
        document.is_none_or(|document| !self.private_documents.contains(document))
    }

    /// Counts one API call; false when the daily allocation is spent.
    pub fn charge_api_call(&mut self) -> bool {
        if self.api.used >= self.api.max {
            return false;
        }
        self.api.used += 1;
        true
    }

    pub fn limit_info(&self) -> String {
        format!("api-usage={}/{}", self.api.used, self.api.max)
    }

    /// Whether an active user has this username (case-insensitive, as logins are).
    pub fn has_active_user(&self, username: &str) -> bool {
        self.user_field_where(username, "IsActive") == Some(Value::Bool(true))
    }

    fn user_field_where(&self, username: &str, field: &str) -> Option<Value> {
        let users = self.object_index("User")?;
        let def = &self.catalog.objects[users];
        let (name_at, _) = def.field("Username")?;
        let (field_at, _) = def.field(field)?;
        self.tables[users]
            .records
            .iter()
            .find(|r| matches!(&r.values()[name_at], Value::Text(u) if u.eq_ignore_ascii_case(username)))
            .map(|r| r.values()[field_at].clone())
    }

    /// The integration user's display name and email, for userinfo.
    pub fn user_name(&self) -> String {
        match self.user_field_where(&self.username, "Name") {
            Some(Value::Text(name)) => name.to_string(),
            _ => String::new(),
        }
    }

    pub fn user_email(&self) -> String {
        match self.user_field_where(&self.username, "Email") {
            Some(Value::Text(email)) => email.to_string(),
            _ => String::new(),
        }
    }

    pub fn record_count(&self) -> usize {
        self.tables.iter().map(|t| t.records.len()).sum()
    }
}

pub fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_copies_of_is_deleted_and_system_modstamp_follow_its_values() {
        assert_eq!(
            std::mem::size_of::<Record>(),
            48,
            "what a scan sweeps per record"
        );
        let values = |deleted: bool, stamp: Value| -> Box<[Value]> {
            vec![Value::Null, Value::Bool(deleted), text("Acme"), stamp].into_boxed_slice()
        };
        let mut record = Record::new([b'0'; 18], values(false, Value::DateTime(5)), 3);
        assert_eq!((record.is_deleted(), record.modstamp(3)), (false, Some(5)));
        assert_eq!(record.modstamp(2), None, "only SystemModstamp's position");
        record.set_values(values(true, Value::DateTime(9)));
        assert_eq!((record.is_deleted(), record.modstamp(3)), (true, Some(9)));
        assert_eq!(record.deleted_flag(IS_DELETED), Some(true));
        assert_eq!(record.deleted_flag(2), None, "only IsDeleted's position");
        record.set_values(values(false, Value::Null));
        assert_eq!((record.is_deleted(), record.modstamp(3)), (false, None));
        assert_eq!(record.deleted_flag(IS_DELETED), Some(false));
        record.set_values(vec![Value::Null, Value::Null].into_boxed_slice());
        assert_eq!(record.deleted_flag(IS_DELETED), None, "a null stays null");
    }

    #[test]
    fn positions_taken_before_purges_still_find_their_records() {
        let record = |n: u8, deleted: bool| {
            let values = vec![Value::Null, Value::Bool(deleted)].into_boxed_slice();
            Record::new([b'0' + n; 18], values, 2)
        };
        let mut table = Table {
            records: (0..6).map(|n| record(n, n % 2 == 1)).collect(),
            ..Table::default()
        };
        let before = table.layout();
        assert_eq!(table.purge(|r| r.is_deleted()), 3);
        // 0 1 2 3 4 5 -> 0 2 4; then 6 is appended and 2 is deleted and purged: 0 4 6.
        let middle = table.layout();
        table.records.push(record(6, false));
        table.records[1] = record(2, true);
        assert_eq!(table.purge(|r| r.is_deleted()), 1);
        assert_eq!(table.purge(|r| r.is_deleted()), 0, "nothing left to purge");
        let ids = |layout: Layout, positions: &[u32]| -> Vec<Option<u8>> {
            positions
                .iter()
                .map(|&at| {
                    table
                        .position(layout, at)
                        .map(|i| table.records[i].id[0] - b'0')
                })
                .collect()
        };
        assert_eq!(
            ids(before, &[0, 1, 2, 3, 4, 5]),
            [Some(0), None, None, None, Some(4), None]
        );
        assert_eq!(
            ids(middle, &[0, 1, 2, 3]),
            [Some(0), None, Some(4), Some(6)]
        );
        assert_eq!(
            ids(table.layout(), &[0, 1, 2, 3]),
            [Some(0), Some(4), Some(6), None]
        );
    }

    #[test]
    fn the_same_seed_builds_the_same_org() {
        let options = || OrgOptions {
            seed: 7,
            population: Population::spread(500),
            clock: Clock::fixed(1_750_000_000_000),
            ..OrgOptions::default()
        };
        let a = Org::generate(options());
        let b = Org::generate(options());
        assert_eq!(a.record_count(), b.record_count());
        assert!(a.record_count() >= 450, "{}", a.record_count());
        let contacts = a.object_index("Contact").expect("Contact");
        assert_eq!(
            a.tables[contacts].records[3].values(),
            b.tables[contacts].records[3].values()
        );
        for table in &a.tables {
            assert!(
                table.records.windows(2).all(|w| w[0].id < w[1].id),
                "records stay sorted by Id"
            );
        }
        assert!(a.org_id.starts_with("00D"));
    }

    #[test]
    fn a_record_is_small() {
        assert!(std::mem::size_of::<Value>() <= 24);
    }
}
