//! Components back into an org: a zip in Salesforce's metadata format (the components' files
//! and a `package.xml` naming them) through `deploy`, polled with `checkDeployStatus` until
//! done; `checkOnly` validates without changing anything.

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::Engine as _;

use super::super::client::SalesforceClient;
use crate::source::{DeployReport, SourceError};

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
    let result = super::run_async(
        client,
        ("deploy", &content),
        ("checkDeployStatus", "<includeDetails>true</includeDetails>"),
        "`sf project deploy report --job-id` with its id tells how it ends",
    )
    .await?;
    let id = result
        .child_text("id")
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
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
