//! `cairn plan-comment`: the plan's comment parts as sticky comments on a pull request, one
//! comment per part, found again by cairn's markers. A part that exists is edited in place, a
//! new one is added, and parts left over from a longer plan are deleted, so the pull request
//! always shows exactly the current plan. Used by the GitHub Action; GitHub's REST API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::Report;
use crate::error::Error;
use crate::plan::render::MARKER;

#[derive(Debug, Clone)]
pub struct PlanCommentOptions {
    /// `owner/name`.
    pub repository: String,
    pub pull_request: u64,
    /// The comment bodies, in order (`cairn plan --format markdown --comment-dir`).
    pub parts: Vec<PathBuf>,
    /// `https://api.github.com`, or a GitHub Enterprise server's API.
    pub api_url: String,
    pub token: String,
}

/// The part a comment of cairn's holds (1-based), from its markers; None for other comments.
fn part_of(body: &str) -> Option<usize> {
    let rest = body.strip_prefix(MARKER)?;
    let second = rest
        .trim_start_matches(['\r', '\n'])
        .lines()
        .next()
        .unwrap_or("");
    match second
        .strip_prefix("<!-- cairn-plan part ")
        .and_then(|r| r.split_once('/'))
    {
        Some((n, _)) => n.parse().ok(),
        None => Some(1),
    }
}

fn failed(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::GitHub {
        message: format!("{what}: {detail}"),
    }
}

/// What `plan-comment` did to the pull request's comments.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanCommented {
    pub pull_request: u64,
    pub parts: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Comments of an older, longer plan, and duplicates.
    pub deleted: usize,
}

impl Report for PlanCommented {
    fn text(&self) -> String {
        format!(
            "plan comment on #{}: {} parts ({} created, {} updated, {} unchanged), {} stale deleted\n",
            self.pull_request, self.parts, self.created, self.updated, self.unchanged, self.deleted
        )
    }
}

pub async fn plan_comment(options: &PlanCommentOptions) -> Result<PlanCommented, Error> {
    let mut bodies = Vec::new();
    for path in &options.parts {
        let body = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if part_of(&body).is_none() {
            return Err(Error::Usage {
                message: format!("{} is not a part of cairn's plan comment", path.display()),
                next: "pass the files `cairn plan --format markdown --comment-dir DIR` wrote"
                    .into(),
            });
        }
        bodies.push(body);
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed("cannot build the HTTP client", e))?;
    let api = options.api_url.trim_end_matches('/');
    let send = |request: reqwest::RequestBuilder| {
        request
            .bearer_auth(&options.token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
    };
    let check = |what: &str, response: reqwest::Response| -> Result<reqwest::Response, Error> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(failed(what, format!("HTTP {}", response.status())))
        }
    };

    // part -> (comment id, body) of cairn's comments; later duplicates are extras to delete.
    let mut existing: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    let mut extras = Vec::new();
    let list = format!(
        "{api}/repos/{}/issues/{}/comments",
        options.repository, options.pull_request
    );
    for page in 1.. {
        let response = send(
            http.get(&list)
                .query(&[("per_page", "100"), ("page", &page.to_string())]),
        )
        .await
        .map_err(|e| failed("listing the pull request's comments failed", e))?;
        let comments: Vec<Value> = check("listing the pull request's comments failed", response)?
            .json()
            .await
            .map_err(|e| failed("the comment list is not JSON", e))?;
        for comment in &comments {
            let (Some(id), Some(body)) = (comment["id"].as_u64(), comment["body"].as_str()) else {
                continue;
            };
            if let Some(part) = part_of(body) {
                match existing.entry(part) {
                    std::collections::btree_map::Entry::Occupied(_) => extras.push(id),
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert((id, body.to_string()));
                    }
                }
            }
        }
        if comments.len() < 100 {
            break;
        }
    }

    let (mut created, mut updated, mut unchanged, mut deleted) = (0, 0, 0, 0);
    for (i, body) in bodies.iter().enumerate() {
        match existing.remove(&(i + 1)) {
            Some((_, old)) if old.trim_end() == body.trim_end() => unchanged += 1,
            Some((id, _)) => {
                let url = format!("{api}/repos/{}/issues/comments/{id}", options.repository);
                let response = send(http.patch(&url).json(&json!({ "body": body })))
                    .await
                    .map_err(|e| failed("updating the plan comment failed", e))?;
                check("updating the plan comment failed", response)?;
                updated += 1;
            }
            None => {
                let response = send(http.post(&list).json(&json!({ "body": body })))
                    .await
                    .map_err(|e| failed("posting the plan comment failed", e))?;
                check("posting the plan comment failed", response)?;
                created += 1;
            }
        }
    }
    // Parts of a longer, older plan, and duplicates.
    for id in existing.into_values().map(|(id, _)| id).chain(extras) {
        let url = format!("{api}/repos/{}/issues/comments/{id}", options.repository);
        let response = send(http.delete(&url))
            .await
            .map_err(|e| failed("deleting a stale plan comment failed", e))?;
        check("deleting a stale plan comment failed", response)?;
        deleted += 1;
    }
    Ok(PlanCommented {
        pull_request: options.pull_request,
        parts: bodies.len(),
        created,
        updated,
        unchanged,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::part_of;

    #[test]
    fn parts_are_read_from_the_markers() {
        assert_eq!(part_of("<!-- cairn-plan -->\n## Plan"), Some(1));
        assert_eq!(
            part_of("<!-- cairn-plan -->\n<!-- cairn-plan part 3/4 -->\n## Plan"),
            Some(3)
        );
        assert_eq!(part_of("LGTM <!-- cairn-plan -->"), None);
    }
}
