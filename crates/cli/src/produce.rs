//! `fjord produce`: the console producer (`kafka-console-producer`): one record per line.

use crate::util::{parse_key_value, CliResult, Connection};
use clap::Args;
use fjord_client::{Producer, ProducerConfig, ProducerRecord};
use std::io::BufRead;
use std::path::PathBuf;

/// Flags of `fjord produce`.
#[derive(Args, Debug)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    conn: Connection,
    /// The topic to write to.
    #[arg(long)]
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Reader properties: parse.key=true, key.separator=SEP (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// Shortcut for --property parse.key=true --property key.separator=SEP.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// A header added to every record, key=value (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Acknowledgements: all, -1, 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Compression codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, value_name = "CODEC", default_value = "none")]
    compression: String,
    /// A producer config, key=value (repeatable).
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    producer_properties: Vec<String>,
}

/// Builds a producer config from the common flags.
pub(crate) fn producer_config(
    bootstrap: &str,
    acks: &str,
    compression: &str,
    extra: &[(String, String)],
) -> CliResult<ProducerConfig> {
    let mut config = ProducerConfig::new(bootstrap)
        .set("acks", acks)?
        .set("compression.type", compression)?;
    // Idempotence needs acks=all, as in the Java client's console producer.
    if acks != "all" && acks != "-1" {
        config = config.set("enable.idempotence", "false")?;
    }
    for (k, v) in extra {
        config = config.set(k, v.clone())?;
    }
    Ok(config)
}

pub(crate) async fn run(args: ProduceArgs) -> CliResult {
    let mut parse_key = false;
    let mut separator = "\t".to_string();
    for p in &args.properties {
        let (k, v) = parse_key_value(p)?;
        match k.as_str() {
            "parse.key" => parse_key = v.eq_ignore_ascii_case("true"),
            "key.separator" => separator = v,
            other => return Err(format!("unknown reader property '{other}'").into()),
        }
    }
    if let Some(sep) = &args.key_separator {
        parse_key = true;
        separator = sep.clone();
    }
    if separator.is_empty() {
        return Err("the key separator must not be empty".into());
    }
    let headers = args
        .headers
        .iter()
        .map(|h| parse_key_value(h))
        .collect::<CliResult<Vec<_>>>()?;
    let extra = args
        .producer_properties
        .iter()
        .map(|h| parse_key_value(h))
        .collect::<CliResult<Vec<_>>>()?;
    let config = producer_config(
        &args.conn.bootstrap_server,
        &args.acks,
        &args.compression,
        &extra,
    )?;
    let producer = Producer::new(config)?;
    let reader: Box<dyn BufRead + Send> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    // Lines come from a blocking reader thread; records go out as they arrive.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
    std::thread::spawn(move || {
        for line in reader.lines() {
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                break;
            }
        }
    });
    let mut pending = Vec::new();
    let mut line_no = 0u64;
    while let Some(line) = rx.recv().await {
        let line = line?;
        line_no += 1;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let mut record = ProducerRecord::new(args.topic.clone());
        if parse_key {
            match line.split_once(separator.as_str()) {
                Some((k, v)) => record = record.key(k.to_string()).value(v.to_string()),
                None => {
                    return Err(format!(
                        "line {line_no}: no key separator '{separator}' found in '{line}'"
                    )
                    .into())
                }
            }
        } else {
            record = record.value(line.to_string());
        }
        for (k, v) in &headers {
            record = record.header(k.clone(), v.clone());
        }
        pending.push(producer.send(record).await?);
        // Check deliveries as we go, so a failure stops us early and memory stays bounded.
        if pending.len() >= 10_000 {
            for d in pending.drain(..) {
                d.await?;
            }
        }
    }
    producer.flush().await?;
    for d in pending {
        d.await?;
    }
    producer.close().await?;
    Ok(())
}
