//! `cairn sim serve`: run the Salesforce simulator in the foreground.

use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// 0 picks a free port.
    pub port: u16,
    pub records: usize,
    pub seed: u64,
    pub extra_metadata: usize,
    pub sandbox: bool,
    pub bulk_delay_ms: u64,
    pub latency_ms: u64,
    pub api_limit: u64,
    /// The connected app's certificate (PEM), which JWT assertions are verified against.
    pub jwt_certificate: Option<std::path::PathBuf>,
    /// Serve HTTPS; the CA certificate to trust is written to `ca_file`.
    pub tls: bool,
    pub ca_file: std::path::PathBuf,
}

/// What to tell the user once the simulator listens.
pub fn banner(sim: &Simulator, options: &ServeOptions) -> String {
    let c = &sim.credentials;
    let records = sim.state.org.read().map(|o| o.record_count()).unwrap_or(0);
    format!(
        "Salesforce simulator ({kind} org, {records} records, seed {seed}) listening.\n\
         \n  instance URL   {url}  (also its My Domain login host)\n  \
         login hosts    {url}/login.salesforce.com  (production)\n                 \
         {url}/test.salesforce.com  (sandbox)\n  \
         JWT audience   {audience}{jwt}\n  \
         client id      {client_id}\n  client secret  {client_secret}\n  username       {username}\n  \
         access token   {access}\n  refresh token  {refresh}\n\
         {tls}\nTry: curl {cacert}-H 'Authorization: Bearer {access}' {url}/services/data/v62.0/limits\n\
         Stop with Ctrl-C.\n",
        audience = cairn_sim::oauth::audience(options.sandbox),
        tls = if options.tls {
            format!("  CA to trust    {}\n", options.ca_file.display())
        } else {
            String::new()
        },
        cacert = if options.tls {
            format!("--cacert {} ", options.ca_file.display())
        } else {
            String::new()
        },
        jwt = if options.jwt_certificate.is_some() {
            ""
        } else {
            "  (JWT bearer off: pass --jwt-cert)"
        },
        kind = if options.sandbox {
            "sandbox"
        } else {
            "production"
        },
        seed = options.seed,
        url = c.instance_url,
        client_id = c.client_id,
        client_secret = c.client_secret,
        username = c.username,
        access = c.access_token,
        refresh = c.refresh_token,
    )
}

pub async fn serve(options: ServeOptions, announce: impl FnOnce(&str)) -> std::io::Result<()> {
    let jwt_certificate = match &options.jwt_certificate {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot read the certificate {}: {e}", path.display()),
            )
        })?),
        None => None,
    };
    let sim = Simulator::start(
        SimOptions {
            jwt_certificate,
            tls: options.tls,
            org: OrgOptions {
                seed: options.seed,
                population: Population::spread(options.records),
                is_sandbox: options.sandbox,
                api_max: options.api_limit,
                extra_metadata: options.extra_metadata,
                ..OrgOptions::default()
            },
            bulk_delay_ms: options.bulk_delay_ms,
            latency_ms: options.latency_ms,
        },
        options.port,
    )
    .await?;
    if let Some(ca) = &sim.credentials.ca_certificate {
        std::fs::write(&options.ca_file, ca).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot write the CA certificate to {}: {e}",
                    options.ca_file.display()
                ),
            )
        })?;
    }
    announce(&banner(&sim, &options));
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    Ok(())
}
