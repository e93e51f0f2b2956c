//! `fjord configs` (like `kafka-configs`) and `fjord cluster describe`.

use crate::util::{parse_key_value_list, CliResult, Connection};
use clap::{Subcommand, ValueEnum};
use fjord_client::{AlterConfigOp, ConfigResource};

/// Kinds of config entity.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum EntityType {
    /// A topic, named by its name.
    Topics,
    /// A broker, named by its id.
    Brokers,
}

/// The `configs` actions.
#[derive(Subcommand, Debug)]
pub(crate) enum ConfigsCommand {
    /// Show an entity's configs (non-default ones; --all for every key).
    Describe {
        #[command(flatten)]
        conn: Connection,
        /// The kind of entity.
        #[arg(long, value_enum)]
        entity_type: EntityType,
        /// The topic name or broker id.
        #[arg(long)]
        entity_name: String,
        /// Show defaults too.
        #[arg(long)]
        all: bool,
    },
    /// Set or remove configs of an entity.
    Alter {
        #[command(flatten)]
        conn: Connection,
        /// The kind of entity.
        #[arg(long, value_enum)]
        entity_type: EntityType,
        /// The topic name or broker id.
        #[arg(long)]
        entity_name: String,
        /// Configs to set: k=v,k=v.
        #[arg(long, value_name = "K=V,...")]
        add_config: Option<String>,
        /// Configs to remove: k,k.
        #[arg(long, value_name = "K,...")]
        delete_config: Option<String>,
    },
}

/// The `cluster` actions.
#[derive(Subcommand, Debug)]
pub(crate) enum ClusterCommand {
    /// Show the cluster id, the controller and the brokers.
    Describe {
        #[command(flatten)]
        conn: Connection,
    },
}

fn resource(kind: EntityType, name: &str) -> CliResult<ConfigResource> {
    Ok(match kind {
        EntityType::Topics => ConfigResource::Topic(name.to_string()),
        EntityType::Brokers => ConfigResource::Broker(
            name.parse()
                .map_err(|_| format!("a broker's entity name is its numeric id, not '{name}'"))?,
        ),
    })
}

fn label(kind: EntityType, name: &str) -> String {
    match kind {
        EntityType::Topics => format!("topic {name}"),
        EntityType::Brokers => format!("broker {name}"),
    }
}

pub(crate) async fn run(cmd: ConfigsCommand) -> CliResult {
    match cmd {
        ConfigsCommand::Describe {
            conn,
            entity_type,
            entity_name,
            all,
        } => {
            let admin = conn.admin()?;
            let r = resource(entity_type, &entity_name)?;
            let described = admin.describe_configs(&[r]).await?;
            let what = if all { "All" } else { "Dynamic" };
            println!(
                "{what} configs for {} are:",
                label(entity_type, &entity_name)
            );
            let mut entries: Vec<_> = described
                .into_iter()
                .flat_map(|(_, e)| e)
                .filter(|e| all || !e.is_default)
                .collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in entries {
                let v = if e.sensitive {
                    "null".to_string()
                } else {
                    e.value.unwrap_or_else(|| "null".to_string())
                };
                println!(
                    "  {}={}{}",
                    e.name,
                    v,
                    if e.read_only { " (read-only)" } else { "" }
                );
            }
            admin.close();
        }
        ConfigsCommand::Alter {
            conn,
            entity_type,
            entity_name,
            add_config,
            delete_config,
        } => {
            let mut ops = Vec::new();
            if let Some(add) = &add_config {
                for (k, v) in parse_key_value_list(add)? {
                    ops.push(AlterConfigOp::Set(k, v));
                }
            }
            if let Some(del) = &delete_config {
                for k in del.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    ops.push(AlterConfigOp::Delete(k.to_string()));
                }
            }
            if ops.is_empty() {
                return Err("nothing to alter: give --add-config and/or --delete-config".into());
            }
            let admin = conn.admin()?;
            let r = resource(entity_type, &entity_name)?;
            admin.incremental_alter_configs(&r, &ops).await?;
            println!(
                "Completed updating config for {}.",
                label(entity_type, &entity_name)
            );
            admin.close();
        }
    }
    Ok(())
}

pub(crate) async fn run_cluster(cmd: ClusterCommand) -> CliResult {
    match cmd {
        ClusterCommand::Describe { conn } => {
            let admin = conn.admin()?;
            let c = admin.describe_cluster().await?;
            println!("Cluster ID: {}", c.cluster_id);
            println!("Controller: {}", c.controller_id);
            let mut brokers = c.brokers;
            brokers.sort_by_key(|b| b.id);
            for b in brokers {
                println!(
                    "Broker {}: {}:{}{}",
                    b.id,
                    b.host,
                    b.port,
                    b.rack.map(|r| format!(" rack={r}")).unwrap_or_default()
                );
            }
            admin.close();
        }
    }
    Ok(())
}
