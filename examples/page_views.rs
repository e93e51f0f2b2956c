//! Page views per user per minute from a click stream, with windowed keys in the output.
//!
//! ```text
//! cargo run -p fjord-streams --example page_views -- [bootstrap] [seconds]
//! ```
//! Defaults: `127.0.0.1:9092`, 20 seconds. Writes a synthetic click stream to `page-views`
//! (JSON values, key = user, event times spread over three minutes), counts views per user
//! in tumbling one-minute windows with 10 s grace, and writes two outputs:
//! `page-view-counts` (every update, key `user@window-start`) and `page-view-final` (one
//! final count per window, once the window has closed: `suppress`).

use fjord_client::{
    Admin, AdminConfig, ErrorCode, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use fjord_streams::{
    JsonValue, KafkaStreams, StreamsBuilder, StreamsConfig, Suppressed, TimeWindows, Windowed,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageView {
    user: String,
    page: String,
}
impl JsonValue for PageView {}

fn label(w: &Windowed<String>) -> String {
    format!("{}@{}", w.key, w.window.start)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);

    let admin = Admin::new(AdminConfig::new(&bootstrap))?;
    for topic in ["page-views", "page-view-counts", "page-view-final"] {
        match admin.create_topics(&[NewTopic::new(topic, 3)]).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
            Err(e) => return Err(e.into()),
        }
    }

    // A click stream: event times 10 s apart over three minutes, starting at a whole minute.
    let producer = Producer::new(ProducerConfig::new(&bootstrap))?;
    let base = 1_700_000_040_000i64; // a whole minute
    let users = ["ada", "bob", "cy"];
    for i in 0..18i64 {
        let user = users[(i % 3) as usize];
        let view = PageView {
            user: user.to_string(),
            page: format!("/page/{}", i % 5),
        };
        let record = ProducerRecord::new("page-views")
            .key(user)
            .value(serde_json::to_vec(&view)?)
            .timestamp(base + i * 10_000);
        producer.send(record).await?.await?;
    }
    producer.close().await?;

    let builder = StreamsBuilder::new();
    let per_minute = builder
        .stream::<String, PageView>("page-views")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count("views-per-minute");
    per_minute
        .to_stream()
        .map(|w, count| (label(w), *count))
        .to("page-view-counts");
    per_minute
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .peek(|w, count| {
            println!(
                "final: {} viewed {count} pages in the minute from {}",
                w.key, w.window.start
            )
        })
        .map(|w, count| (label(w), *count))
        .to("page-view-final");

    // One state directory per process, so several instances can run on one machine.
    let state_dir = std::env::temp_dir().join(format!("fjord-streams-{}", std::process::id()));
    let config = StreamsConfig::new("page-views-example", &bootstrap)
        .commit_interval(Duration::from_secs(1))
        .state_dir(state_dir);
    let mut app = KafkaStreams::new(builder.build()?, config);
    app.start().await?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
    }
    // Interactive query of the window store.
    for (w, count) in app.window_store::<String, i64>("views-per-minute").all()? {
        println!("{}: {count}", label(&w));
    }
    app.close().await?;
    Ok(())
}
