//! The Tooling API's read side: `/tooling/query` (SOQL over tooling objects, with the data API's
//! paging and errors), `/tooling/sobjects` and each object's describe. The org has Apex classes
//! and triggers with their source, generated from the seed. Its calls count against the same
//! daily allocation as the data API's, as Salesforce counts them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::catalog::Catalog;
use super::org::{ApiUsage, DAY_MS, Org, Rng, Table, Value, text};
use super::rest::{self, Api, QueryParams};
use super::server::{ApiError, State, admit, json_response, version, with_limit_info};

type Result<T> = std::result::Result<T, ApiError>;

/// The Apex of a mid-sized org: services, trigger handlers, schedulers and their tests.
const CLASSES: &[&str] = &[
    "AccountService",
    "AccountTriggerHandler",
    "ContactService",
    "ContactTriggerHandler",
    "InvoiceService",
    "InvoiceReminderScheduler",
    "LeadRouter",
    "OpportunityScoring",
    "CaseEscalation",
    "DataQualityBatch",
    "AccountServiceTest",
    "ContactServiceTest",
    "InvoiceServiceTest",
    "LeadRouterTest",
    "OpportunityScoringTest",
    "CaseEscalationTest",
];

/// (trigger, object) pairs.
const TRIGGERS: &[(&str, &str)] = &[
    ("AccountTrigger", "Account"),
    ("ContactTrigger", "Contact"),
    ("InvoiceTrigger", "Invoice__c"),
];

/// The tooling side of `org`: its Apex, owned by its API user, on its clock.
pub fn generate(org: &Org, seed: u64) -> Org {
    let catalog = Catalog::tooling();
    let mut tooling = Org {
        gone: false,
        tables: vec![Table::default(); catalog.objects.len()],
        catalog,
        org_id: org.org_id.clone(),
        user_id: org.user_id.clone(),
        username: org.username.clone(),
        is_sandbox: org.is_sandbox,
        // Calls are counted on the org's own allocation.
        api: ApiUsage { max: 0, used: 0 },
        clock: org.clock.clone(),
        private_documents: Default::default(),
    };
    let mut rng = Rng::new(seed ^ 0x7001);
    let now = org.clock.now();
    for name in CLASSES {
        let body = class_source(name);
        let created = now - (30 + rng.below(600) as i64) * DAY_MS;
        let version = 55.0 + rng.below(8) as f64;
        tooling.insert_generated("ApexClass", created, |field| {
            source_field(field, name, &body, version).unwrap_or(Value::Null)
        });
    }
    for (name, object) in TRIGGERS {
        let handler = object.trim_end_matches("__c");
        let body = format!(
            "trigger {name} on {object} (before insert, after update) {{\n    {handler}TriggerHandler.handle(Trigger.new, Trigger.oldMap);\n}}\n"
        );
        let created = now - (30 + rng.below(600) as i64) * DAY_MS;
        tooling.insert_generated("ApexTrigger", created, |field| match field {
            "TableEnumOrId" => text(object),
            "UsageBeforeInsert" | "UsageAfterUpdate" => Value::Bool(true),
            _ => source_field(field, name, &body, 62.0).unwrap_or(Value::Null),
        });
    }
    tooling
}

fn source_field(field: &str, name: &str, body: &str, version: f64) -> Option<Value> {
    Some(match field {
        "Name" => text(name),
        "ApiVersion" => Value::Num(version),
        "Status" => text("Active"),
        "IsValid" => Value::Bool(true),
        "Body" => text(body),
        "BodyCrc" => Value::Num(f64::from(crc(body))),
        "LengthWithoutComments" => Value::Int(body.len() as i64),
        _ => return None,
    })
}

/// A stable checksum of the source (Salesforce's BodyCrc is one too).
fn crc(body: &str) -> u32 {
    body.bytes().fold(0x811C_9DC5u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

fn class_source(name: &str) -> String {
    if let Some(subject) = name.strip_suffix("Test") {
        return format!(
            "@IsTest\nprivate class {name} {{\n    @IsTest\n    static void behaves() {{\n        Test.startTest();\n        {subject}.run();\n        Test.stopTest();\n        System.assert(true, '{subject} ran');\n    }}\n}}\n"
        );
    }
    format!(
        "public with sharing class {name} {{\n    // Entry point for {name}.\n    public static void run() {{\n        List<SObject> scope = new List<SObject>();\n        System.debug(LoggingLevel.FINE, '{name}: ' + scope.size());\n    }}\n}}\n"
    )
}

pub fn routes() -> Router<Arc<State>> {
    let base = "/services/data/{version}/tooling";
    let mut router =
        Router::new().route(&format!("{base}/query/{{locator}}"), get(rest::query_more));
    for slash in ["", "/"] {
        router = router
            .route(&format!("{base}{slash}"), get(resources))
            .route(&format!("{base}/query{slash}"), get(query))
            .route(&format!("{base}/sobjects{slash}"), get(describe_global))
            .route(
                &format!("{base}/sobjects/{{object}}{slash}"),
                get(object_info),
            )
            .route(
                &format!("{base}/sobjects/{{object}}/describe{slash}"),
                get(describe),
            );
    }
    router
}

async fn resources(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let base = format!("/services/data/v{v}/tooling");
    let body = json!({"query": format!("{base}/query"), "sobjects": format!("{base}/sobjects")});
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

async fn query(
    state: Shared<Arc<State>>,
    v: Path<String>,
    headers: HeaderMap,
    params: UrlQuery<QueryParams>,
) -> Result<Response> {
    rest::run(Api::Tooling, state, v, headers, params, false)
}

async fn describe_global(
    state: Shared<Arc<State>>,
    v: Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    rest::describe_global_of(Api::Tooling, state, v, headers)
}

async fn object_info(
    state: Shared<Arc<State>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    rest::object_info_of(Api::Tooling, state, path, headers)
}

async fn describe(
    state: Shared<Arc<State>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    rest::describe_of(Api::Tooling, state, path, headers)
}
