//! `auth/client-credentials-needs-my-domain`: Salesforce serves the client credentials flow
//! only on an org's My Domain; through login.salesforce.com or test.salesforce.com every
//! login is refused, so a task without `loginUrl` could never connect.

use serde_json::Value;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const RULE: &str = "auth/client-credentials-needs-my-domain";
const AUTH: &str = "/source/auth/clientCredentials";

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files.iter().filter(|f| f.kind == ManifestKind::Task) {
        if file.get(AUTH).is_none() {
            continue;
        }
        if matches!(file.get("/source/loginUrl"), Some(Value::String(_))) {
            continue;
        }
        out.push(
            file.error(RULE, "the client credentials flow needs the org's My Domain")
                .at(file.key_span(AUTH))
                .pointer(AUTH)
                .label("served only on the org's My Domain")
                .help("set `source.loginUrl` to the My Domain URL, such as https://acme.my.salesforce.com (Setup > My Domain shows it); login.salesforce.com refuses this flow"),
        );
    }
}
