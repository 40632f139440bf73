//! A real S3-protocol server (s3s-fs) for the S3 backend tests, started in-process.

/// A real S3-protocol server (s3s-fs), in-process on an ephemeral port, with one bucket.
pub struct S3Server {
    pub endpoint: String,
    _runtime: tokio::runtime::Runtime,
    pub _root: tempfile::TempDir,
}

pub const S3_KEY_ID: &str = "cairn-test-key-id";
pub const S3_SECRET: &str = "cairn-test-secret";

pub fn s3_server() -> S3Server {
    let root = tempfile::tempdir().expect("dir");
    std::fs::create_dir(root.path().join("backups")).expect("bucket");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs");
    let endpoint = runtime.block_on(async {
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY_ID, S3_SECRET));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let connection = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        format!("http://{address}")
    });
    S3Server {
        endpoint,
        _runtime: runtime,
        _root: root,
    }
}
