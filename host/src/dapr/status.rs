//! daprd's delivery statuses (docs/dapr-contract.md): what the app answers for one message.

/// The app's verdict on one delivery, as daprd reads `{"status": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Processed: daprd acknowledges the message.
    Success,
    /// Not processed: daprd redelivers per its resiliency policy (or, with none, dead-letters).
    Retry,
    /// Never to be processed: daprd forwards it to the dead-letter topic, if any, and acks.
    Drop,
}

impl Status {
    /// The word daprd reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Retry => "RETRY",
            Status::Drop => "DROP",
        }
    }
}
