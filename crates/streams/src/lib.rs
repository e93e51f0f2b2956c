//! `fjord-streams`: Kafka-Streams-style stream processing as a library embedded in your
//! application — filter, transform, aggregate and join topics in real time, with local
//! state restored from changelog topics after a failure. No separate cluster: run more
//! instances with the same `application.id` and they share the work through a consumer
//! group.
//!
//! # Design
//!
//! * **DSL** ([`StreamsBuilder`], [`KStream`], [`KTable`], [`GlobalKTable`]): each
//!   operation adds a node to a processor graph; [`StreamsBuilder::build`] freezes it into a
//!   [`Topology`]. Keys and values are typed in the DSL and stored as bytes in between,
//!   through their [`Codec`] (bytes, strings, integers, JSON via serde).
//! * **Engine**: a task (one per input partition number) runs records through the graph
//!   depth-first, synchronously, with no I/O: records in, sink records, repartition records
//!   and store changelog records out. The [`TopologyTestDriver`] and the runtime drive the
//!   same engine, so tests without a broker exercise the real operators.
//! * **State** ([`state`]): key-value, window and session stores over one byte-level
//!   [`KeyValueStore`] trait, in memory or persistent (fjall); every write is logged to a
//!   compacted changelog topic `<application.id>-<store>-changelog`, which restores the
//!   store on another instance or after a crash.
//! * **Runtime** ([`KafkaStreams`]): a consumer group named after `application.id` hands out
//!   partitions; tasks are created, restored from their changelogs, run, and closed as
//!   partitions come and go. Offsets are committed every `commit.interval.ms`, after the
//!   producer and stores are flushed: at-least-once processing.
//!
//! # Example
//!
//! The classic word count, tested without a broker:
//!
//! ```
//! use fjord_streams::{StreamsBuilder, TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<(), String>("text-lines")
//!     .flat_map_values(|line| {
//!         line.split_whitespace()
//!             .map(str::to_lowercase)
//!             .collect::<Vec<_>>()
//!     })
//!     .group_by(|_, word| word.clone())
//!     .count("word-counts")
//!     .to_stream()
//!     .to("word-counts-out");
//!
//! let mut driver = TopologyTestDriver::new(builder.build()?)?;
//! driver.pipe("text-lines", (), "the cat and the hat".to_string(), 0)?;
//! let counts = driver.key_value_store::<String, i64>("word-counts");
//! assert_eq!(counts.get(&"the".to_string())?, Some(2));
//! let out = driver.read_output::<String, i64>("word-counts-out")?;
//! assert_eq!(out.last(), Some(&("hat".to_string(), 1)));
//! # Ok::<(), fjord_streams::StreamsError>(())
//! ```

mod codec;
mod config;
mod driver;
mod dsl;
mod error;
mod runtime;
pub mod state;
mod topology;

pub use codec::{Codec, Json, JsonValue, Window, Windowed};
pub use config::StreamsConfig;
pub use driver::{Changelogs, TestRecord, TopologyTestDriver};
pub use dsl::{
    BranchedKStream, GlobalKTable, JoinWindows, KGroupedStream, KGroupedTable, KStream, KTable,
    Materialized, Predicate, SessionWindowedKStream, SessionWindows, SlidingWindowedKStream,
    SlidingWindows, StreamsBuilder, Suppressed, TimeWindowedKStream, TimeWindows,
};
pub use error::{Result, StreamsError};
pub use runtime::{KafkaStreams, StreamsState};
pub use state::{
    FjallKeyValueStore, InMemoryKeyValueStore, KeyValueStore, ReadOnlyKeyValueStore,
    ReadOnlyWindowStore,
};
pub use topology::Topology;
