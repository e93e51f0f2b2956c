//! `fjord`: the Fjord command line.
//!
//! `fjord broker` runs a broker. With no arguments it starts a single node on
//! 127.0.0.1:9092 keeping its data in `./fjord-data`; `--config server.properties` and
//! `--override key=value` take Kafka's configuration keys, as `kafka-server-start` does.
//!
//! The client commands speak Kafka's vocabulary and take Kafka's tool flags
//! (`--bootstrap-server`, default 127.0.0.1:9092), through `fjord-client`:
//! `topics` (kafka-topics), `produce` (kafka-console-producer), `consume`
//! (kafka-console-consumer), `groups` (kafka-consumer-groups), `configs` (kafka-configs),
//! `cluster describe`, and `perf produce|consume` (kafka-producer/consumer-perf-test).
//! Errors print `fjord: <message>` on stderr and exit with status 1.

mod configs;
mod connect_cmd;
mod consume;
mod groups;
mod perf;
mod produce;
mod topics;
mod util;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fjord",
    version,
    about = "Fjord: a Kafka-compatible event streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (single node by default: 127.0.0.1:9092, data in ./fjord-data).
    Broker {
        /// A Kafka-style server.properties file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// The properties file, positionally, as kafka-server-start takes it.
        #[arg(value_name = "server.properties", conflicts_with = "config")]
        config_positional: Option<PathBuf>,
        /// Override a configuration key, e.g. --override log.dirs=/var/lib/fjord (repeatable).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Create, list, describe and delete topics (like kafka-topics).
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Write lines from stdin or a file as records (like kafka-console-producer).
    Produce(produce::ProduceArgs),
    /// Print records of a topic (like kafka-console-consumer).
    Consume(consume::ConsumeArgs),
    /// List, describe and delete consumer groups, reset their offsets (like kafka-consumer-groups).
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Describe and alter topic and broker configs (like kafka-configs).
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// Describe the cluster.
    #[command(subcommand)]
    Cluster(configs::ClusterCommand),
    /// Producer and consumer throughput/latency tests (like kafka-*-perf-test).
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Run a Fjord Connect worker (standalone or distributed), like connect-standalone.sh.
    #[command(subcommand)]
    Connect(connect_cmd::ConnectCommand),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FJORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs redirected to a file stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Broker {
            config,
            config_positional,
            overrides,
        } => run_broker(config.or(config_positional), overrides),
        Command::Topics(c) => run_client(topics::run(c)),
        Command::Produce(a) => run_client(produce::run(a)),
        Command::Consume(a) => run_client(consume::run(a)),
        Command::Groups(c) => run_client(groups::run(c)),
        Command::Configs(c) => run_client(configs::run(c)),
        Command::Cluster(c) => run_client(configs::run_cluster(c)),
        Command::Perf(c) => run_client(perf::run(c)),
        Command::Connect(c) => run_client(connect_cmd::run(c)),
    }
}

/// Runs one client command on a fresh runtime; an error prints `fjord: <message>`.
fn run_client(command: impl std::future::Future<Output = util::CliResult>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fjord: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(command);
    // Do not wait for background client tasks (heartbeats, readers) to wind down.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_broker(config_file: Option<PathBuf>, overrides: Vec<String>) -> ExitCode {
    let text = match &config_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("fjord: cannot read config file {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let config = match fjord_broker::BrokerConfig::from_sources(text.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fjord: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fjord: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let broker = match fjord_broker::Broker::open(config) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("fjord: cannot start broker: {e}");
                return ExitCode::FAILURE;
            }
        };
        let running = match broker.serve().await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("fjord: {e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
