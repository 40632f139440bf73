//! Sources of data to back up, behind one trait (`Connector`) the backup and restore engines
//! drive.
//! Salesforce is the first; the connection status they report (Connected or Disconnected, and
//! why) is the same for any SaaS.

mod connector;
mod error;
mod objects;
pub mod salesforce;

pub use crate::snapshot::components::METADATA_OBJECT;
pub use connector::{
    Account, BodyStream, Connector, FetchError, FetchWindow, Files, Held, Record, RowSink, Upload,
    UploadStream,
};
pub use error::SourceError;
pub use objects::{
    BodyField, Coverage, DeployReport, Field, FieldInfo, ObjectPlan, RecordWrite, WriteOutcome,
};

/// Why a source cannot be reached with the credentials it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The refresh token or session expired, or was revoked: log in again.
    Expired,
    /// The credentials are refused (unknown client, unapproved user, bad key or audience).
    Refused,
    /// The org no longer exists (deleted, or a sandbox was refreshed).
    OrgGone,
    /// The network or the service did not answer.
    Unreachable,
}

/// The result of a connection check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connected {
        org_id: String,
        username: String,
    },
    Disconnected {
        reason: DisconnectReason,
        detail: String,
    },
}
