//! Inserts with a file body (Salesforce's Insert or Update Blob Data): the record's fields as
//! JSON and the file, streamed, in one `multipart/form-data` request.

use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::Value;

use super::{Payload, SalesforceClient};
use crate::source::SourceError;

impl SalesforceClient {
    /// Creates a record of `object` with a file body in one multipart call; the answer's JSON.
    pub async fn create_with_body(
        &self,
        object: &str,
        path: &str,
        json: &Value,
        upload: &crate::source::Upload,
    ) -> Result<Value, SourceError> {
        // The body is binary: a boundary that cannot be in the JSON part, and is unlikely in it.
        let mut raw = [0u8; 12];
        getrandom::fill(&mut raw).map_err(|e| SourceError::Config(e.to_string()))?;
        let boundary = format!("cairn-{}", crate::store::crypto::hex(&raw));
        let response = self
            .send(
                Method::POST,
                path,
                Payload::Parts {
                    boundary: &boundary,
                    entity: &entity_part(object),
                    json,
                    upload,
                },
                &[],
            )
            .await?;
        response
            .json()
            .await
            .map_err(|e| SourceError::Network(format!("unreadable response: {e}")))
    }
}

/// The name of the fields' part as Salesforce documents it: `entity_content` for a
/// ContentVersion, `entity_document` for a Document, and so on.
fn entity_part(object: &str) -> String {
    match object {
        "ContentVersion" => "entity_content".to_string(),
        other => format!("entity_{}", other.to_ascii_lowercase()),
    }
}

/// The request body of a multipart insert: the fields (`entity`), then the file in a part
/// named by its field, streamed.
pub(super) fn multipart_body(
    boundary: &str,
    entity: &str,
    json: &Value,
    upload: &crate::source::Upload,
) -> (u64, reqwest::Body) {
    // A file name is the org's data, and goes in a quoted header: quotes and line breaks out.
    let file_name: String = upload
        .file_name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{entity}\"\r\nContent-Type: application/json\r\n\r\n{json}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        upload.field
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + upload.size + tail.len() as u64;
    let framed = futures_util::stream::once(async move { Ok(bytes::Bytes::from(head)) })
        .chain((upload.bytes)())
        .chain(futures_util::stream::once(async move {
            Ok(bytes::Bytes::from(tail))
        }));
    (length, reqwest::Body::wrap_stream(framed))
}
