//! Restoring 10,000 deleted records with their children (issue 23):
//!
//!     cargo bench --bench restore            # CAIRN_BENCH_RESTORE=… for another size
//!
//! Accounts are deleted in the simulator, taking their invoices (master-detail children)
//! along; the restore engine brings them all back, first from the Recycle Bin (undelete, the
//! original Ids), then, the bin emptied, by creating them again. Prints API calls and wall
//! time of each; the goal is at most 60 calls for 10,000 undeleted records (200 a call for
//! undelete, query and update).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use cairn::restore::{self, Chosen, RunJournal, Schemas};
use cairn::source::Connector;
use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let wanted: usize = std::env::var("CAIRN_BENCH_RESTORE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // Accounts are a fifth of a spread org and invoices a twentieth: room for `wanted`.
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 2,
                population: Population::spread(wanted * 5),
                api_max: 100_000_000,
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator");
    let connect = || common::connector(&sim);
    let (_dir, store) = common::bench_store();

    // Every invoice and its account, then more accounts, up to `wanted` records.
    let (accounts, invoices) = {
        let org = sim.state.org.read().expect("org");
        let invoice = org.object_index("Invoice__c").expect("Invoice__c");
        let account = org.object_index("Account").expect("Account");
        let master = org.catalog.objects[invoice]
            .field("Account__c")
            .expect("master")
            .0;
        let mut parents = BTreeSet::new();
        let mut invoices = Vec::new();
        for record in &org.tables[invoice].records {
            if let cairn_sim::org::Value::Text(parent) = &record.values()[master] {
                parents.insert(parent.to_string());
                invoices.push(record.id().to_string());
            }
        }
        let mut accounts: Vec<String> = parents.into_iter().collect();
        for record in &org.tables[account].records {
            if accounts.len() + invoices.len() >= wanted {
                break;
            }
            let id = record.id().to_string();
            if !accounts.contains(&id) {
                accounts.push(id);
            }
        }
        (accounts, invoices)
    };

    let source = connect();
    let mut schemas: Schemas = BTreeMap::new();
    let mut chosen = Vec::new();
    for (object, ids) in [("Account", &accounts), ("Invoice__c", &invoices)] {
        let described = source.describe(object).await.expect("describe");
        let infos = source.field_infos(&described);
        let fields: Vec<String> = infos.keys().cloned().collect();
        let mut records = BTreeMap::new();
        for chunk in ids.chunks(200) {
            records.extend(
                source
                    .read_records(object, &fields, chunk)
                    .await
                    .expect("read"),
            );
        }
        for (id, record) in records {
            chosen.push(Chosen {
                object: object.to_string(),
                id,
                record,
            });
        }
        schemas.insert(object.to_string(), infos);
    }
    let total = chosen.len();
    let delete_all = |sim: &Simulator| {
        let mut org = sim.state.org.write().expect("org");
        let account = org.object_index("Account").expect("Account");
        for id in &accounts {
            let _ = cairn_sim::write::delete(&mut org, account, id, &mut Vec::new());
        }
    };

    println!(
        "restore of {total} deleted records ({} accounts, {} invoices deleted with them)",
        accounts.len(),
        invoices.len()
    );
    println!("| path | API calls | wall time | records back |");
    println!("|---|---|---|---|");
    for (path, purge) in [
        ("undelete (in the Recycle Bin)", false),
        ("create (purged)", true),
    ] {
        delete_all(&sim);
        if purge {
            let mut org = sim.state.org.write().expect("org");
            for table in org.tables.iter_mut() {
                table.purge(|r| r.is_deleted());
            }
        }
        let connector = connect();
        let started = Instant::now();
        let plan = restore::plan(&connector, &chosen, &schemas, None, false, &BTreeMap::new())
            .await
            .expect("plan");
        let mut journal = RunJournal::start(&store, &format!("bench-{purge}")).expect("journal");
        let result = restore::apply(&connector, &plan, &schemas, None, &mut journal)
            .await
            .expect("apply");
        let elapsed = started.elapsed().as_secs_f64();
        assert!(
            result.failed.is_empty(),
            "{:?}",
            &result.failed[..result.failed.len().min(3)]
        );
        let back = result.undeleted.len() + result.created.len();
        println!(
            "| {path} | {} | {elapsed:.2} s | {back} |",
            connector.api_calls()
        );
    }
}
