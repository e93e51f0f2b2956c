//! Shared vocabulary of every Fjord crate: partition identifiers, offsets, the clock and
//! Kafka's error-code table.
//!
//! Nothing here does I/O. The types are deliberately small so that `storage`, `broker`,
//! `client` and the rest agree on names without depending on each other.
//!
//! ```
//! use fjord_common::{ErrorCode, TopicPartition};
//!
//! let tp = TopicPartition::new("orders", 3);
//! assert_eq!(tp.to_string(), "orders-3");
//! assert_eq!(ErrorCode::OffsetOutOfRange.code(), 1);
//! assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
//! ```

mod clock;
mod error_code;
mod ids;
mod properties;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error_code::ErrorCode;
pub use ids::{LeaderEpoch, NodeId, Offset, TopicPartition};
pub use properties::parse_properties;
