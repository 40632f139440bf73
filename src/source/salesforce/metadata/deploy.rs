//! Components back into an org: a zip in Salesforce's metadata format (the components' files
//! and a `package.xml` naming them) through `deploy`, polled with `checkDeployStatus` until
//! done; `checkOnly` validates without changing anything.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;

use super::super::client::SalesforceClient;
use crate::source::{DeployReport, SourceError};

/// How long a deploy may run at the org before it is given up on.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The `package.xml` naming `members` ((type, full name)).
pub fn package_xml(members: &[(String, String)], version: &str) -> String {
    let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (kind, name) in members {
        by_type.entry(kind).or_default().push(name);
    }
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Package xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n",
    );
    for (kind, names) in by_type {
        xml.push_str("    <types>\n");
        for name in names {
            xml.push_str(&format!(
                "        <members>{}</members>\n",
                sfsoap::escape(name)
            ));
        }
        xml.push_str(&format!(
            "        <name>{}</name>\n    </types>\n",
            sfsoap::escape(kind)
        ));
    }
    xml.push_str(&format!(
        "    <version>{}</version>\n</Package>\n",
        sfsoap::escape(version)
    ));
    xml
}

/// The zip of `files` with a `package.xml` naming `members` ((type, full name)).
pub fn package(
    files: &BTreeMap<String, Vec<u8>>,
    members: &[(String, String)],
    version: &str,
) -> Result<Vec<u8>, String> {
    let xml = package_xml(members, version);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut add = |path: &str, bytes: &[u8]| -> Result<(), String> {
        zip.start_file(path, options).map_err(|e| e.to_string())?;
        zip.write_all(bytes).map_err(|e| e.to_string())
    };
    add("package.xml", xml.as_bytes())?;
    for (path, bytes) in files {
        add(path, bytes)?;
    }
    Ok(zip.finish().map_err(|e| e.to_string())?.into_inner())
}

/// Deploys the zip (validation only with `check_only`) and waits for the org's verdict.
pub async fn deploy(
    client: &SalesforceClient,
    zip: &[u8],
    check_only: bool,
) -> Result<DeployReport, SourceError> {
    let content = format!(
        "<ZipFile>{}</ZipFile><DeployOptions><checkOnly>{check_only}</checkOnly><rollbackOnError>true</rollbackOnError><singlePackage>true</singlePackage><ignoreWarnings>false</ignoreWarnings></DeployOptions>",
        base64::engine::general_purpose::STANDARD.encode(zip)
    );
    let started = client.metadata("deploy", &content).await?;
    let id = started
        .body
        .child("result")
        .and_then(|r| r.child_text("id"))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| super::list::unreadable("deploy"))?
        .to_string();
    let begun = std::time::Instant::now();
    let mut wait = Duration::from_millis(0);
    let result = loop {
        tokio::time::sleep(wait).await;
        let answer = client
            .metadata(
                "checkDeployStatus",
                &format!(
                    "<asyncProcessId>{}</asyncProcessId><includeDetails>true</includeDetails>",
                    sfsoap::escape(&id)
                ),
            )
            .await?;
        let result = answer
            .body
            .child("result")
            .cloned()
            .ok_or_else(|| super::list::unreadable("checkDeployStatus"))?;
        if result.child_text("done").map(str::trim) == Some("true") {
            break result;
        }
        if begun.elapsed() > DEPLOY_TIMEOUT {
            return Err(SourceError::Network(format!(
                "the metadata deploy {id} was not done after {} minutes; `sf project deploy report --job-id {id}` tells how it ends",
                DEPLOY_TIMEOUT.as_secs() / 60
            )));
        }
        wait = (wait * 2).clamp(Duration::from_secs(1), Duration::from_secs(10));
    };
    let text = |name: &str| result.child_text(name).map(str::trim).unwrap_or_default();
    let mut failures = Vec::new();
    let mut deployed = Vec::new();
    if let Some(details) = result.child("details") {
        for failure in details.children_named("componentFailures") {
            let field = |name: &str| failure.child_text(name).map(str::trim).unwrap_or_default();
            failures.push((
                format!("{}:{}", field("componentType"), field("fullName")),
                field("problem").to_string(),
            ));
        }
        for success in details.children_named("componentSuccesses") {
            let field = |name: &str| success.child_text(name).map(str::trim).unwrap_or_default();
            if !field("componentType").is_empty() {
                deployed.push(format!("{}:{}", field("componentType"), field("fullName")));
            }
        }
    }
    if !text("errorMessage").is_empty() {
        failures.push(("the deploy".to_string(), text("errorMessage").to_string()));
    }
    Ok(DeployReport {
        id: id.clone(),
        success: text("success") == "true",
        status: text("status").to_string(),
        deployed,
        failures,
    })
}
