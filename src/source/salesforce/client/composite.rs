//! Reading several resources in one call: `/composite` with up to
//! [`COMPOSITE_QUERIES`](super::COMPOSITE_QUERIES) GET subrequests.

use reqwest::Method;
use serde_json::Value;

use super::{COMPOSITE_QUERIES, SalesforceClient};
use crate::source::SourceError;

impl SalesforceClient {
    /// Reads several resources in `/composite` calls, one API call for up to
    /// [`COMPOSITE_QUERIES`] of them (composite takes 25 subrequests, of which 5 may be
    /// queries). Each answer in order, or the error its subrequest got. Only GETs are sent,
    /// which is why a composite call that broke off may be sent again.
    pub async fn get_many(
        &self,
        paths: &[String],
    ) -> Result<Vec<Result<Value, SourceError>>, SourceError> {
        let mut answers = Vec::with_capacity(paths.len());
        for group in paths.chunks(COMPOSITE_QUERIES) {
            let subrequests: Vec<Value> = group
                .iter()
                .enumerate()
                .map(|(n, path)| {
                    serde_json::json!({"method": "GET", "url": path, "referenceId": format!("read{n}")})
                })
                .collect();
            let body = serde_json::json!({"allOrNone": false, "compositeRequest": subrequests});
            let path = format!("/services/data/v{}/composite", self.login.api_version);
            let answer = self.call(Method::POST, &path, Some(&body)).await?;
            let results = answer["compositeResponse"].as_array();
            for n in 0..group.len() {
                let Some(result) = results.and_then(|r| r.get(n)) else {
                    answers.push(Err(SourceError::Network(
                        "a composite answer left out a subrequest".into(),
                    )));
                    continue;
                };
                let status = result["httpStatusCode"].as_u64().unwrap_or(0);
                answers.push(match status {
                    200..=299 => Ok(result["body"].clone()),
                    _ => Err(SourceError::Api {
                        status: u16::try_from(status).unwrap_or(0),
                        code: result["body"][0]["errorCode"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        message: result["body"][0]["message"]
                            .as_str()
                            .unwrap_or("a composite subrequest failed")
                            .to_string(),
                    }),
                });
            }
        }
        Ok(answers)
    }
}
