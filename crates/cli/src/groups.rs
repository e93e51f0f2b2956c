//! `fjord groups`: list, describe, delete consumer groups and reset their offsets, like
//! `kafka-consumer-groups`.

use crate::util::{parse_datetime_ms, print_table, CliResult, Connection};
use clap::{ArgGroup, Subcommand};
use fjord_client::{Admin, OffsetSpec, TopicPartition};
use std::collections::BTreeMap;

/// The `groups` actions.
#[derive(Subcommand, Debug)]
pub(crate) enum GroupsCommand {
    /// List consumer groups.
    List {
        #[command(flatten)]
        conn: Connection,
    },
    /// Describe a group: per partition the committed offset, log end offset, lag and owner.
    Describe {
        #[command(flatten)]
        conn: Connection,
        /// The group to describe.
        #[arg(long)]
        group: String,
    },
    /// Delete a group (it must have no active members).
    Delete {
        #[command(flatten)]
        conn: Connection,
        /// The group to delete.
        #[arg(long)]
        group: String,
    },
    /// Reset a group's committed offsets for a topic (dry run unless --execute).
    #[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_datetime", "shift_by", "to_offset"])))]
    ResetOffsets {
        #[command(flatten)]
        conn: Connection,
        /// The group whose offsets to reset.
        #[arg(long)]
        group: String,
        /// The topic, optionally with partitions: topic or topic:0,1.
        #[arg(long)]
        topic: String,
        /// Reset to the earliest offset.
        #[arg(long)]
        to_earliest: bool,
        /// Reset to the latest offset.
        #[arg(long)]
        to_latest: bool,
        /// Reset to the first offset at or after this time (YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:MM]).
        #[arg(long, value_name = "ISO8601")]
        to_datetime: Option<String>,
        /// Move the committed offsets by N (may be negative).
        #[arg(long, value_name = "N", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Reset to this offset.
        #[arg(long, value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// Apply the change (otherwise only print the plan).
        #[arg(long)]
        execute: bool,
    },
}

async fn end_offsets(
    admin: &Admin,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> CliResult<BTreeMap<TopicPartition, i64>> {
    let query: Vec<(TopicPartition, OffsetSpec)> =
        partitions.iter().map(|tp| (tp.clone(), spec)).collect();
    Ok(admin
        .list_offsets(&query)
        .await?
        .into_iter()
        .map(|(tp, o)| (tp, o.offset))
        .collect())
}

async fn topic_partitions(admin: &Admin, topic: &str) -> CliResult<Vec<TopicPartition>> {
    let (name, only) = match topic.split_once(':') {
        Some((n, list)) => {
            let parts = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .map_err(|_| format!("bad partition '{p}' in --topic"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            (n, Some(parts))
        }
        None => (topic, None),
    };
    let described = admin.describe_topics(&[name]).await?;
    let mut out: Vec<TopicPartition> = described
        .iter()
        .flat_map(|d| {
            d.partitions
                .iter()
                .map(|p| TopicPartition::new(d.name.clone(), p.partition))
        })
        .filter(|tp| only.as_ref().is_none_or(|o| o.contains(&tp.partition)))
        .collect();
    out.sort();
    Ok(out)
}

pub(crate) async fn run(cmd: GroupsCommand) -> CliResult {
    match cmd {
        GroupsCommand::List { conn } => {
            let admin = conn.admin()?;
            let mut groups = admin.list_groups().await?;
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            for g in groups {
                println!("{}", g.group_id);
            }
            admin.close();
        }
        GroupsCommand::Describe { conn, group } => {
            let admin = conn.admin()?;
            let description = admin
                .describe_groups(&[group.as_str()])
                .await?
                .into_iter()
                .next();
            let committed = admin.list_consumer_group_offsets(&group).await?;
            let mut owners: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
            let mut state = "Dead".to_string();
            if let Some(d) = &description {
                state = d.state.clone();
                for m in &d.members {
                    for tp in &m.assignment {
                        owners.insert(
                            tp.clone(),
                            (
                                m.member_id.clone(),
                                m.client_host.clone(),
                                m.client_id.clone(),
                            ),
                        );
                    }
                }
            }
            let mut partitions: Vec<TopicPartition> =
                committed.keys().chain(owners.keys()).cloned().collect();
            partitions.sort();
            partitions.dedup();
            if partitions.is_empty() {
                admin.close();
                if state == "Dead" {
                    return Err(format!("consumer group '{group}' does not exist").into());
                }
                println!("Consumer group '{group}' has no active members and no committed offsets. (state: {state})");
                return Ok(());
            }
            let ends = end_offsets(&admin, &partitions, OffsetSpec::Latest).await?;
            let none = || "-".to_string();
            let rows: Vec<Vec<String>> = partitions
                .iter()
                .map(|tp| {
                    let current = committed.get(tp).copied();
                    let end = ends.get(tp).copied();
                    let lag = match (current, end) {
                        (Some(c), Some(e)) => (e - c).max(0).to_string(),
                        _ => none(),
                    };
                    let (consumer, host, client) = owners
                        .get(tp)
                        .cloned()
                        .unwrap_or_else(|| (none(), none(), none()));
                    vec![
                        group.clone(),
                        tp.topic.clone(),
                        tp.partition.to_string(),
                        current.map(|c| c.to_string()).unwrap_or_else(none),
                        end.map(|c| c.to_string()).unwrap_or_else(none),
                        lag,
                        consumer,
                        host,
                        client,
                    ]
                })
                .collect();
            println!("Consumer group '{group}' (state: {state})");
            println!();
            print_table(
                &[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                ],
                &rows,
            );
            admin.close();
        }
        GroupsCommand::Delete { conn, group } => {
            let admin = conn.admin()?;
            admin.delete_groups(&[group.as_str()]).await?;
            println!("Deletion of requested consumer groups ('{group}') was successful.");
            admin.close();
        }
        GroupsCommand::ResetOffsets {
            conn,
            group,
            topic,
            to_earliest,
            to_latest,
            to_datetime,
            shift_by,
            to_offset,
            execute,
        } => {
            let admin = conn.admin()?;
            let partitions = topic_partitions(&admin, &topic).await?;
            let earliest = end_offsets(&admin, &partitions, OffsetSpec::Earliest).await?;
            let latest = end_offsets(&admin, &partitions, OffsetSpec::Latest).await?;
            let clamp = |tp: &TopicPartition, o: i64| {
                let lo = earliest.get(tp).copied().unwrap_or(0);
                let hi = latest.get(tp).copied().unwrap_or(o);
                o.clamp(lo, hi.max(lo))
            };
            let mut plan: BTreeMap<TopicPartition, i64> = BTreeMap::new();
            if to_earliest {
                for tp in &partitions {
                    plan.insert(tp.clone(), earliest.get(tp).copied().unwrap_or(0));
                }
            } else if to_latest {
                for tp in &partitions {
                    plan.insert(tp.clone(), latest.get(tp).copied().unwrap_or(0));
                }
            } else if let Some(dt) = to_datetime {
                let ms = parse_datetime_ms(&dt)?;
                let found = end_offsets(&admin, &partitions, OffsetSpec::Timestamp(ms)).await?;
                for tp in &partitions {
                    // No record at or after the time: the log end.
                    let o = match found.get(tp) {
                        Some(o) if *o >= 0 => *o,
                        _ => latest.get(tp).copied().unwrap_or(0),
                    };
                    plan.insert(tp.clone(), o);
                }
            } else if let Some(n) = shift_by {
                let committed = admin.list_consumer_group_offsets(&group).await?;
                for tp in &partitions {
                    let base = match committed.get(tp) {
                        Some(c) => *c,
                        None => {
                            return Err(format!(
                                "group {group} has no committed offset for {tp} to shift"
                            )
                            .into())
                        }
                    };
                    plan.insert(tp.clone(), clamp(tp, base.saturating_add(n)));
                }
            } else if let Some(o) = to_offset {
                for tp in &partitions {
                    plan.insert(tp.clone(), clamp(tp, o));
                }
            }
            if execute {
                admin.alter_consumer_group_offsets(&group, &plan).await?;
            }
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|(tp, o)| {
                    vec![
                        group.clone(),
                        tp.topic.clone(),
                        tp.partition.to_string(),
                        o.to_string(),
                    ]
                })
                .collect();
            print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
            if !execute {
                println!();
                println!("Dry run: nothing was changed. Add --execute to apply.");
            }
            admin.close();
        }
    }
    Ok(())
}
