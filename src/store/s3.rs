//! S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, ...) through the `object_store`
//! crate. Its API is async and the store's is not: each call runs on a runtime the backend owns,
//! from a short-lived thread, so it works whether or not the caller is inside another runtime.

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::StoreError;
use super::backend::Backend;

/// Where and how to reach a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix inside the bucket ("" for the bucket's root).
    pub prefix: String,
    pub region: Option<String>,
    /// For services other than AWS: `http://127.0.0.1:9000`, `https://<account>.r2.cloudflarestorage.com`.
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

pub struct S3Backend {
    store: AmazonS3,
    prefix: String,
    location: String,
    /// Always Some until dropped (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Backend {
    pub fn new(settings: &S3Settings) -> Result<S3Backend, StoreError> {
        let location = format!(
            "s3://{}/{}{}",
            settings.bucket,
            settings.prefix,
            settings
                .endpoint
                .as_deref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default()
        );
        let error = |message: String| StoreError::Backend {
            location: location.clone(),
            message,
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(
                settings
                    .region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".to_string()),
            )
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| error(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| error(format!("cannot start the I/O runtime: {e}")))?;
        let prefix = settings.prefix.trim_matches('/').to_string();
        Ok(S3Backend {
            store,
            prefix,
            location,
            runtime: Some(runtime),
        })
    }

    fn key(&self, path: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(path)
        } else {
            ObjectPath::from(format!("{}/{path}", self.prefix))
        }
    }

    /// Runs an operation to completion on the backend's runtime.
    fn run<T: Send>(
        &self,
        operation: impl Future<Output = Result<T, object_store::Error>> + Send,
    ) -> Result<T, StoreError> {
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| match &self.runtime {
                    Some(runtime) => runtime.block_on(operation),
                    None => unreachable_runtime(),
                })
                .join()
        });
        match outcome {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(_) => Err(StoreError::Backend {
                location: self.location.clone(),
                message: "the S3 client panicked".into(),
            }),
        }
    }

    fn error(&self, e: object_store::Error) -> StoreError {
        StoreError::Backend {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }
}

/// A backend is only used before it is dropped; this keeps the type honest without a panic.
fn unreachable_runtime<T>() -> Result<T, object_store::Error> {
    Err(object_store::Error::Generic {
        store: "S3",
        source: "the backend's runtime is gone".into(),
    })
}

/// The backend is dropped wherever its owner is, often inside an async command: a runtime may
/// not be dropped (which blocks) there, so it is shut down in the background instead.
impl Drop for S3Backend {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Backend for S3Backend {
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let key = self.key(path);
        // S3 puts are atomic: readers see the whole object or none of it.
        self.run(self.store.put(&key, PutPayload::from(bytes.to_vec())))
            .map(|_| ())
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(path);
        let fetched = self.run(async {
            match self.store.get(&key).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        fetched.map(|bytes| bytes.map(|b| b.to_vec()))
    }

    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        let key = self.key(path);
        self.run(async {
            match self.store.head(&key).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let key = self.key(prefix.trim_end_matches('/'));
        let metas = self.run(self.store.list(Some(&key)).try_collect::<Vec<_>>())?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut paths: Vec<String> = metas
            .into_iter()
            .map(|m| m.location.to_string())
            .filter_map(|p| p.strip_prefix(&strip).map(str::to_string))
            .collect();
        paths.sort();
        Ok(paths)
    }

    fn delete(&self, path: &str) -> Result<(), StoreError> {
        let key = self.key(path);
        self.run(async {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}
