//! `fjord topics`: create, list, describe, alter and delete topics, like `kafka-topics`.

use crate::util::{parse_key_value, CliResult, Connection};
use clap::Subcommand;
use fjord_client::{AlterConfigOp, ConfigResource, NewTopic};

/// The `topics` actions.
#[derive(Subcommand, Debug)]
pub(crate) enum TopicsCommand {
    /// Create a topic.
    Create {
        #[command(flatten)]
        conn: Connection,
        /// The topic to create.
        #[arg(long)]
        topic: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Replication factor.
        #[arg(long, default_value_t = 1)]
        replication_factor: i16,
        /// A topic config, key=value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics.
    List {
        #[command(flatten)]
        conn: Connection,
        /// Leave out internal topics such as __consumer_offsets.
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Describe topics: partitions, leader, replicas, isr and non-default configs.
    Describe {
        #[command(flatten)]
        conn: Connection,
        /// The topic to describe (all topics when omitted).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Alter a topic: add partitions (`--partitions`, the new total) and set or remove configs.
    Alter {
        #[command(flatten)]
        conn: Connection,
        /// The topic to alter.
        #[arg(long)]
        topic: String,
        /// The new total number of partitions (can only grow, as in Kafka).
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a topic config, key=value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove a topic config override, going back to the broker default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        #[command(flatten)]
        conn: Connection,
        /// The topic to delete.
        #[arg(long)]
        topic: String,
    },
}

fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) async fn run(cmd: TopicsCommand) -> CliResult {
    match cmd {
        TopicsCommand::Create {
            conn,
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut new =
                NewTopic::new(topic.clone(), partitions).replication_factor(replication_factor);
            for c in &configs {
                let (k, v) = parse_key_value(c)?;
                new = new.config(k, v);
            }
            let admin = conn.admin()?;
            admin.create_topics(&[new]).await?;
            println!("Created topic {topic}.");
            admin.close();
        }
        TopicsCommand::List {
            conn,
            exclude_internal,
        } => {
            let admin = conn.admin()?;
            for name in admin.list_topics(!exclude_internal).await? {
                println!("{name}");
            }
            admin.close();
        }
        TopicsCommand::Describe { conn, topic } => {
            let admin = conn.admin()?;
            let names = match topic {
                Some(t) => vec![t],
                None => admin.list_topics(false).await?,
            };
            for d in admin.describe_topics(&names).await? {
                let configs = admin
                    .describe_configs(&[ConfigResource::Topic(d.name.clone())])
                    .await?;
                let non_default: Vec<String> = configs
                    .into_iter()
                    .flat_map(|(_, entries)| entries)
                    .filter(|e| !e.is_default)
                    .map(|e| {
                        let v = if e.sensitive {
                            "(sensitive)".to_string()
                        } else {
                            e.value.unwrap_or_default()
                        };
                        format!("{}={}", e.name, v)
                    })
                    .collect();
                let rf = d.partitions.first().map(|p| p.replicas.len()).unwrap_or(0);
                println!(
                    "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                    d.name,
                    d.topic_id,
                    d.partitions.len(),
                    rf,
                    non_default.join(",")
                );
                let mut parts = d.partitions;
                parts.sort_by_key(|p| p.partition);
                for p in parts {
                    println!(
                        "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                        d.name,
                        p.partition,
                        p.leader,
                        join(&p.replicas),
                        join(&p.isr)
                    );
                }
            }
            admin.close();
        }
        TopicsCommand::Alter {
            conn,
            topic,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                return Err(
                    "nothing to alter: give --partitions, --config or --delete-config".into(),
                );
            }
            // Parse every flag before changing anything, so a typo alters nothing.
            let mut ops = Vec::new();
            for c in &configs {
                let (k, v) = parse_key_value(c)?;
                ops.push(AlterConfigOp::Set(k, v));
            }
            ops.extend(delete_configs.into_iter().map(AlterConfigOp::Delete));
            let admin = conn.admin()?;
            if let Some(total) = partitions {
                admin.create_partitions(&topic, total).await?;
                println!("Topic {topic} now has {total} partitions.");
            }
            if !ops.is_empty() {
                admin
                    .incremental_alter_configs(&ConfigResource::Topic(topic.clone()), &ops)
                    .await?;
                println!("Updated the configs of topic {topic}.");
            }
            admin.close();
        }
        TopicsCommand::Delete { conn, topic } => {
            let admin = conn.admin()?;
            admin.delete_topics(&[topic.as_str()]).await?;
            println!("Deleted topic {topic}.");
            admin.close();
        }
    }
    Ok(())
}
