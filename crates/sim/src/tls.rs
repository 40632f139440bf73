//! HTTPS for the simulator: a throwaway CA and a certificate for 127.0.0.1/localhost, minted at
//! start, so clients that only speak https (simple-salesforce hard-codes it) connect unchanged,
//! trusting the CA the simulator hands out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TlsMaterial {
    /// The CA certificate clients must trust, PEM.
    pub ca_pem: String,
    pub config: Arc<ServerConfig>,
}

fn error(context: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{context}: {e}"))
}

/// A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost, as PEM; also
/// what tests hand to other local servers (the SMTP receiver) that clients must trust.
pub struct Certificates {
    pub ca_pem: String,
    /// The server certificate followed by the CA's.
    pub chain_pem: String,
    /// The server's PKCS#8 private key.
    pub key_pem: String,
    chain_der: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

pub fn certificates() -> std::io::Result<Certificates> {
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| error("CA parameters", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cairn simulator CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| error("CA key", e))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| error("CA certificate", e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| error("server parameters", e))?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(|e| error("server key", e))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| error("server certificate", e))?;
    Ok(Certificates {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
        key_pem: key.serialize_pem(),
        chain_der: vec![
            CertificateDer::from(cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ],
        key_der: key.serialize_der(),
    })
}

pub fn generate() -> std::io::Result<TlsMaterial> {
    let certificates = certificates()?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(
            certificates.chain_der,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certificates.key_der)),
        )
        .map_err(|e| error("TLS configuration", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: certificates.ca_pem,
        config: Arc::new(config),
    })
}

/// Accepts TCP connections and completes their TLS handshakes.
pub struct TlsListener {
    pub tcp: TcpListener,
    pub acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                // Out of file descriptors and the like: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
