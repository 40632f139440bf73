//! Logging in: the JWT bearer grant or the client credentials grant for unattended runs, or a
//! refresh token from `cairn auth login`. The login host is the org's My Domain when given, else login.salesforce.com for
//! production and test.salesforce.com for sandboxes; the API base is always the token
//! response's `instance_url`.

use serde::Deserialize;
use zeroize::Zeroizing;

pub const PRODUCTION_LOGIN: &str = "https://login.salesforce.com";
pub const SANDBOX_LOGIN: &str = "https://test.salesforce.com";
/// How long a JWT assertion is valid; Salesforce accepts a few minutes.
const ASSERTION_LIFETIME_SECS: u64 = 180;

/// How to obtain a session.
#[derive(Clone)]
pub enum Credentials {
    Jwt {
        client_id: String,
        username: String,
        /// PEM (PKCS#8 or PKCS#1) of the connected app's certificate key.
        private_key_pem: Zeroizing<String>,
    },
    RefreshToken {
        client_id: String,
        client_secret: Option<Zeroizing<String>>,
        refresh_token: Zeroizing<String>,
    },
    /// The client credentials flow: the app logs in as the integration user it is assigned.
    ClientCredentials {
        client_id: String,
        client_secret: Zeroizing<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Jwt {
                client_id,
                username,
                ..
            } => write!(
                f,
                "Jwt {{ client_id: {client_id}, username: {username}, private_key: [REDACTED] }}"
            ),
            Credentials::RefreshToken { client_id, .. } => write!(
                f,
                "RefreshToken {{ client_id: {client_id}, tokens: [REDACTED] }}"
            ),
            Credentials::ClientCredentials { client_id, .. } => write!(
                f,
                "ClientCredentials {{ client_id: {client_id}, client_secret: [REDACTED] }}"
            ),
        }
    }
}

/// The kind of org a login is for: its generic login host, and the JWT audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Production,
    Sandbox,
}

#[derive(Debug, Clone)]
pub struct LoginConfig {
    pub environment: Environment,
    /// My Domain (or any other login base); None uses the generic host of the environment.
    pub login_url: Option<String>,
    pub api_version: String,
    pub credentials: Credentials,
}

impl LoginConfig {
    pub fn login_base(&self) -> String {
        self.login_url
            .clone()
            .unwrap_or_else(|| self.audience().to_string())
            .trim_end_matches('/')
            .to_string()
    }

    /// The JWT audience: the generic login host of the org's kind, never the My Domain.
    pub fn audience(&self) -> &'static str {
        match self.environment {
            Environment::Production => PRODUCTION_LOGIN,
            Environment::Sandbox => SANDBOX_LOGIN,
        }
    }

    /// The form to POST to the token endpoint.
    pub fn token_request(&self) -> Result<Vec<(&'static str, String)>, String> {
        match &self.credentials {
            Credentials::Jwt {
                client_id,
                username,
                private_key_pem,
            } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let claims = serde_json::json!({
                    "iss": client_id,
                    "sub": username,
                    "aud": self.audience(),
                    "exp": now + ASSERTION_LIFETIME_SECS,
                });
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
                    .map_err(|e| format!("the private key is not an RSA key in PEM: {e}"))?;
                let assertion = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
                    &claims,
                    &key,
                )
                .map_err(|e| format!("cannot sign the JWT assertion: {e}"))?;
                Ok(vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
                    ),
                    ("assertion", assertion),
                ])
            }
            Credentials::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", refresh_token.to_string()),
                    ("client_id", client_id.clone()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.to_string()));
                }
                Ok(form)
            }
            Credentials::ClientCredentials {
                client_id,
                client_secret,
            } => Ok(vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.to_string()),
            ]),
        }
    }
}

/// The token endpoint's answer (the fields a client uses).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub instance_url: String,
    pub id: Option<String>,
}

/// The token endpoint's refusal.
#[derive(Debug, Deserialize)]
pub struct TokenError {
    pub error: String,
    #[serde(default)]
    pub error_description: String,
}
