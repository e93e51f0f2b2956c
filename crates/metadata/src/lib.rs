//! Cluster metadata for Fjord: the records that describe topics, partitions, configs and
//! producer-id blocks; the [`MetadataImage`] they build when replayed; the pure controller
//! logic that turns admin requests into records; and the durable [`MetadataLog`].
//!
//! The design follows KRaft: the controller never mutates state directly. It computes
//! `(records, response)` from the current image ([`controller`]), the records are made
//! durable, and only then replayed into the image that everyone reads. Today the log is a
//! single-voter local file; the Raft quorum of a multi-node cluster will carry the same
//! records.
//!
//! ```
//! use fjord_metadata::{controller, MetadataImage};
//! use fjord_metadata::controller::{CreateTopic, TopicDefaults};
//!
//! let mut image = MetadataImage::default();
//! let result = controller::create_topics(
//!     &image,
//!     &[1],
//!     &TopicDefaults { num_partitions: 3, replication_factor: 1 },
//!     &|_, _| Ok(()),
//!     vec![CreateTopic::new("orders")],
//!     false,
//! );
//! for record in &result.records {
//!     image.apply(record);
//! }
//! assert_eq!(image.topic("orders").map(|t| t.partitions.len()), Some(3));
//! ```

pub mod controller;
mod image;
mod log;
mod records;

pub use image::{ConfigResource, MetadataImage, PartitionImage, TopicImage};
pub use log::{MetadataLog, MetadataLogError};
pub use records::{ConfigResourceType, MetadataRecord};
pub use uuid::Uuid;
