//! `fjord consume`: the console consumer (`kafka-console-consumer`).

use crate::util::{parse_key_value, CliResult, Connection};
use clap::{Args, ValueEnum};
use fjord_client::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// Output formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The value (and key, with print.key=true), one record per line.
    Text,
    /// One JSON object per line: key, value, topic, partition, offset, timestamp, headers.
    Json,
}

/// Flags of `fjord consume`.
#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    conn: Connection,
    /// The topic to read.
    #[arg(long)]
    topic: String,
    /// Start at the earliest offset when there is no committed offset (default: latest).
    #[arg(long)]
    from_beginning: bool,
    /// Consume as a member of this group (offsets are committed).
    #[arg(long)]
    group: Option<String>,
    /// Read only this partition.
    #[arg(long, conflicts_with = "group")]
    partition: Option<i32>,
    /// Start offset in --partition: a number, earliest or latest.
    #[arg(long, requires = "partition")]
    offset: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Stop when no record arrived for this long.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Formatter properties: print.key=true, key.separator=SEP, print.partition=true,
    /// print.offset=true, print.timestamp=true (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// A consumer config, key=value (repeatable).
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    consumer_properties: Vec<String>,
}

#[derive(Default)]
struct TextOptions {
    print_key: bool,
    print_partition: bool,
    print_offset: bool,
    print_timestamp: bool,
    separator: String,
}

fn text(b: &Option<fjord_client::Bytes>) -> String {
    match b {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "null".to_string(),
    }
}

fn json_bytes(b: &Option<fjord_client::Bytes>) -> serde_json::Value {
    match b {
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        None => serde_json::Value::Null,
    }
}

fn format_record(r: &ConsumerRecord, format: Format, o: &TextOptions) -> String {
    match format {
        Format::Json => {
            let headers: serde_json::Map<String, serde_json::Value> = r
                .headers
                .iter()
                .map(|h| (h.key.clone(), json_bytes(&h.value)))
                .collect();
            serde_json::json!({
                "topic": &*r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "key": json_bytes(&r.key),
                "value": json_bytes(&r.value),
                "headers": headers,
            })
            .to_string()
        }
        Format::Text => {
            let mut parts = Vec::new();
            if o.print_timestamp {
                parts.push(format!("CreateTime:{}", r.timestamp));
            }
            if o.print_partition {
                parts.push(format!("Partition:{}", r.partition));
            }
            if o.print_offset {
                parts.push(format!("Offset:{}", r.offset));
            }
            if o.print_key {
                parts.push(text(&r.key));
            }
            parts.push(text(&r.value));
            parts.join(&o.separator)
        }
    }
}

pub(crate) async fn run(args: ConsumeArgs) -> CliResult {
    let mut opts = TextOptions {
        separator: "\t".to_string(),
        ..TextOptions::default()
    };
    for p in &args.properties {
        let (k, v) = parse_key_value(p)?;
        let on = v.eq_ignore_ascii_case("true");
        match k.as_str() {
            "print.key" => opts.print_key = on,
            "print.partition" => opts.print_partition = on,
            "print.offset" => opts.print_offset = on,
            "print.timestamp" => opts.print_timestamp = on,
            "key.separator" => opts.separator = v,
            other => return Err(format!("unknown formatter property '{other}'").into()),
        }
    }
    let reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let mut config = ConsumerConfig::new(args.conn.bootstrap_server.clone())
        .auto_offset_reset(reset)
        .fetch_max_wait_ms(100)
        .enable_auto_commit(false);
    if let Some(g) = &args.group {
        config = config.group_id(g.clone());
    }
    for p in &args.consumer_properties {
        let (k, v) = parse_key_value(p)?;
        config = config.set(&k, v)?;
    }
    let mut consumer = Consumer::new(config)?;
    if args.group.is_some() {
        consumer.subscribe(&[args.topic.as_str()], None)?;
    } else {
        let partitions: Vec<TopicPartition> = match args.partition {
            Some(p) => vec![TopicPartition::new(args.topic.clone(), p)],
            None => {
                let admin = args.conn.admin()?;
                let described = admin.describe_topics(&[args.topic.as_str()]).await?;
                admin.close();
                described
                    .iter()
                    .flat_map(|d| {
                        d.partitions
                            .iter()
                            .map(|p| TopicPartition::new(d.name.clone(), p.partition))
                    })
                    .collect()
            }
        };
        consumer.assign(&partitions)?;
        if let (Some(offset), Some(tp)) = (&args.offset, partitions.first()) {
            match offset.as_str() {
                "earliest" => consumer.seek_to_beginning(&partitions)?,
                "latest" => consumer.seek_to_end(&partitions)?,
                n => {
                    let n: i64 = n.parse().map_err(|_| {
                        format!("--offset must be a number, earliest or latest, not '{n}'")
                    })?;
                    consumer.seek(tp, n)?;
                }
            }
        }
    }
    let mut printed = HashMap::new();
    let result = consume_loop(&mut consumer, &args, &opts, &mut printed).await;
    if args.group.is_some() && result.is_ok() {
        if let Err(e) = commit(&mut consumer, printed).await {
            consumer.close().await.ok();
            return Err(e);
        }
    }
    let closed = consumer.close().await;
    let count = result?;
    closed?;
    eprintln!("Processed a total of {count} messages");
    Ok(())
}

/// Commits what was printed (not what was prefetched), and the positions of the other
/// assigned partitions, as the console consumer's commit on close does.
async fn commit(consumer: &mut Consumer, mut offsets: HashMap<TopicPartition, i64>) -> CliResult {
    for tp in consumer.assignment() {
        if let std::collections::hash_map::Entry::Vacant(slot) = offsets.entry(tp) {
            let position = consumer.position(slot.key()).await?;
            slot.insert(position);
        }
    }
    if !offsets.is_empty() {
        consumer.commit_offsets_sync(offsets).await?;
    }
    Ok(())
}

/// Prints records until a stop condition; `printed` collects the next offset per partition.
async fn consume_loop(
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    opts: &TextOptions,
    printed: &mut HashMap<TopicPartition, i64>,
) -> CliResult<u64> {
    let mut count = 0u64;
    let mut last = Instant::now();
    let stdout = std::io::stdout();
    loop {
        if args.max_messages.is_some_and(|m| count >= m) {
            return Ok(count);
        }
        let wait = match args.timeout_ms {
            Some(t) => {
                let left = Duration::from_millis(t).saturating_sub(last.elapsed());
                if left.is_zero() {
                    return Ok(count);
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        let records = tokio::select! {
            r = consumer.poll(wait) => r?,
            _ = tokio::signal::ctrl_c() => return Ok(count),
        };
        if records.is_empty() {
            continue;
        }
        last = Instant::now();
        let mut out = stdout.lock();
        for r in records {
            if args.max_messages.is_some_and(|m| count >= m) {
                // Not printed: the group resumes here next time.
                printed.entry(r.topic_partition()).or_insert(r.offset);
                continue;
            }
            writeln!(out, "{}", format_record(&r, args.format, opts))?;
            count += 1;
            printed.insert(r.topic_partition(), r.offset + 1);
        }
        out.flush()?;
    }
}
