//! The email channel: the rendered text as a plain-text message over SMTP (lettre), upgraded
//! with STARTTLS (or implicit TLS on port 465) before any credentials are sent. Servers are
//! verified against the system's trust store; a private CA is added with `SSL_CERT_FILE`.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::ATTEMPTS;
use crate::manifest::model::{EmailChannel, Smtp};

/// Submissions over implicit TLS (RFC 8314) rather than STARTTLS.
const IMPLICIT_TLS_PORT: u16 = 465;
const TIMEOUT: Duration = Duration::from_secs(30);
const SUBJECT_LIMIT: usize = 200;

/// Sends `text` to every recipient; `credentials` are (user name, password).
pub(super) async fn send(
    channel: &EmailChannel,
    text: &str,
    credentials: Option<(String, String)>,
) -> Result<(), String> {
    send_within(channel, text, credentials, ATTEMPT_DEADLINE).await
}

/// lettre's timeout covers connecting, not a server that stops answering mid-conversation; an
/// apply must never hang on a notification.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(60);

async fn send_within(
    channel: &EmailChannel,
    text: &str,
    credentials: Option<(String, String)>,
    deadline: Duration,
) -> Result<(), String> {
    let message = message(channel, text)?;
    let transport = transport(&channel.smtp, credentials)?;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        match tokio::time::timeout(deadline, transport.send(message.clone())).await {
            Ok(Ok(_)) => return Ok(()),
            // 5xx: the same message would be refused again (bad credentials, unknown recipient).
            Ok(Err(e)) if e.is_permanent() => {
                return Err(format!("the SMTP server refused it: {}", describe(&e)));
            }
            Ok(Err(e)) => last = describe(&e),
            Err(_) => {
                last = format!(
                    "the SMTP server stopped answering (no reply within {} s)",
                    deadline.as_secs_f32()
                )
            }
        }
    }
    Err(format!("{last} after {ATTEMPTS} attempts"))
}

fn message(channel: &EmailChannel, text: &str) -> Result<Message, String> {
    let address = |field: &str, value: &str| -> Result<Mailbox, String> {
        value
            .parse::<Mailbox>()
            .map_err(|e| format!("{field} `{value}` is not an email address: {e}"))
    };
    let mut builder = Message::builder()
        .from(address("from", &channel.from)?)
        .subject(subject(text))
        .header(ContentType::TEXT_PLAIN);
    for to in &channel.to {
        builder = builder.to(address("to", to)?);
    }
    builder
        .body(text.to_string())
        .map_err(|e| format!("the message could not be built: {e}"))
}

/// The first line of the rendered text, without its Markdown heading marks.
fn subject(text: &str) -> String {
    let line = text
        .lines()
        .map(|line| line.trim_start_matches('#').trim())
        .find(|line| !line.is_empty())
        .unwrap_or("cairn");
    match line.char_indices().nth(SUBJECT_LIMIT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

fn transport(
    smtp: &Smtp,
    credentials: Option<(String, String)>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let parameters = || {
        TlsParameters::new(smtp.host.clone())
            .map_err(|e| format!("TLS for {} cannot be set up: {}", smtp.host, describe(&e)))
    };
    let tls = if smtp.port == IMPLICIT_TLS_PORT {
        Tls::Wrapper(parameters()?)
    } else if smtp.starttls {
        Tls::Required(parameters()?)
    } else {
        if credentials.is_some() && !is_loopback(&smtp.host) {
            return Err(format!(
                "cairn does not send SMTP credentials to {} unencrypted: set smtp.starttls: true (or use port {IMPLICIT_TLS_PORT})",
                smtp.host
            ));
        }
        Tls::None
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.build())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// lettre's error with its causes; server replies are kept, credentials are never in them.
fn describe(error: &lettre::transport::smtp::Error) -> String {
    crate::text::error_chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(port: u16, starttls: bool) -> EmailChannel {
        EmailChannel {
            to: vec!["ops@example.com".into()],
            from: "cairn@example.com".into(),
            smtp: Smtp {
                host: "smtp.example.com".into(),
                port,
                starttls,
                username_env: None,
                password_env: None,
            },
        }
    }

    #[test]
    fn the_subject_is_the_first_line_without_heading_marks() {
        assert_eq!(
            subject("\n### cairn: Task acme — backup success\n\nbody"),
            "cairn: Task acme — backup success"
        );
        assert_eq!(subject(""), "cairn");
        let long = "é".repeat(300);
        assert_eq!(subject(&long).chars().count(), SUBJECT_LIMIT + 1);
    }

    #[test]
    fn credentials_are_never_sent_in_the_clear_to_a_remote_server() {
        let refused = transport(
            &channel(25, false).smtp,
            Some(("user".into(), "hunter2".into())),
        )
        .map(drop)
        .expect_err("refused");
        assert!(refused.contains("set smtp.starttls: true"), "{refused}");
        assert!(!refused.contains("hunter2"));
        assert!(transport(&channel(25, false).smtp, None).is_ok());
        assert!(transport(&channel(587, true).smtp, Some(("u".into(), "p".into()))).is_ok());
        let mut local = channel(2525, false);
        local.smtp.host = "127.0.0.1".into();
        assert!(transport(&local.smtp, Some(("u".into(), "p".into()))).is_ok());
    }

    /// A server that greets, then never answers: each attempt ends at its deadline.
    #[tokio::test]
    async fn a_server_that_stops_answering_does_not_hang_the_run() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = stream.write_all(b"220 silent.example ESMTP\r\n").await;
                    let mut sink = [0u8; 512];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                });
            }
        });
        let mut silent = channel(port, false);
        silent.smtp.host = "127.0.0.1".into();
        let error = send_within(&silent, "hello", None, Duration::from_millis(200))
            .await
            .map(drop)
            .expect_err("gave up");
        assert_eq!(
            error,
            "the SMTP server stopped answering (no reply within 0.2 s) after 3 attempts"
        );
    }

    #[test]
    fn a_bad_address_names_its_field() {
        let mut bad = channel(587, true);
        bad.to.push("not an address".into());
        let error = message(&bad, "hi").map(drop).expect_err("refused");
        assert!(error.starts_with("to `not an address`"), "{error}");
    }
}
