//! Distributed mode: two workers in one group share connectors and tasks; configs, offsets
//! and statuses live in compacted topics; when a worker dies its tasks move to the survivor,
//! which resumes from the committed offsets.

mod connect_support;
mod in_process;

use connect_support::{call, eventually};
use fjord_connect::config::parse_properties;
use fjord_connect::distributed::start_distributed;
use in_process::{TestBroker, TestError};
use serde_json::json;
use std::path::Path;

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The distinct lines in order of first appearance (at-least-once may repeat some).
fn distinct(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

fn worker_props(bootstrap: &str) -> fjord_connect::config::Props {
    parse_properties(&format!(
        "bootstrap.servers={bootstrap}\nlisteners=http://127.0.0.1:0\ngroup.id=connect-cluster\n\
         config.storage.topic=connect-configs\noffset.storage.topic=connect-offsets\n\
         status.storage.topic=connect-status\noffset.storage.partitions=3\n\
         status.storage.partitions=2\nsession.timeout.ms=6000\nheartbeat.interval.ms=500\n\
         key.converter=org.apache.kafka.connect.storage.StringConverter\n\
         value.converter=org.apache.kafka.connect.storage.StringConverter\n\
         offset.flush.interval.ms=50\n"
    ))
}

/// Which worker runs each task of `name`, from a worker's `/status`.
async fn task_workers(base: &str, name: &str) -> Vec<String> {
    let (_, st) = call("GET", &format!("{base}/connectors/{name}/status"), None).await;
    st["tasks"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter(|t| t["state"] == "RUNNING")
                .map(|t| t["worker_id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_tasks_and_survive_one_dying() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "1\n2\n")?;

    let a = start_distributed(worker_props(&broker.bootstrap())).await?;
    let b = start_distributed(worker_props(&broker.bootstrap())).await?;
    let (id_a, id_b) = (
        a.worker().worker_id().to_string(),
        b.worker().worker_id().to_string(),
    );
    eventually(60, "both workers in the group", || async {
        (a.worker().members().len() == 2 && b.worker().members().len() == 2).then_some(())
    })
    .await;

    // Create through one worker, read through the other: the config topic carries it.
    let (s, _) = call(
        "POST",
        &format!("{}/connectors", a.url()),
        Some(json!({"name": "src", "config": {
            "connector.class": "FileStreamSource", "file": input.display().to_string(), "topic": "dist-lines"}})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = call(
        "PUT",
        &format!("{}/connectors/sink/config", b.url()),
        Some(json!({"connector.class": "FileStreamSink", "file": output.display().to_string(), "topics": "dist-lines"})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, names) = call("GET", &format!("{}/connectors", a.url()), None).await;
    assert_eq!(names, json!(["sink", "src"]));
    // Adding the second connector may move the source task to the other worker while it
    // runs: at-least-once allows the first lines twice, but each must arrive.
    eventually(60, "the first lines", || async {
        (distinct(lines(&output)) == ["1", "2"]).then_some(())
    })
    .await;

    // The two tasks are spread over both workers, and both workers report the same statuses.
    let (src_worker, sink_worker) =
        eventually(60, "statuses of both tasks on both workers", || async {
            let on_a = (
                task_workers(&a.url(), "src").await,
                task_workers(&a.url(), "sink").await,
            );
            let on_b = (
                task_workers(&b.url(), "src").await,
                task_workers(&b.url(), "sink").await,
            );
            (on_a == on_b && on_a.0.len() == 1 && on_a.1.len() == 1)
                .then(|| (on_a.0[0].clone(), on_a.1[0].clone()))
        })
        .await;
    assert_ne!(
        src_worker, sink_worker,
        "two tasks, two workers: one task each"
    );

    // Kill the worker running the source task (no clean shutdown, no LeaveGroup).
    let (victim, survivor) = if src_worker == id_a { (a, b) } else { (b, a) };
    let survivor_id = survivor.worker().worker_id().to_string();
    assert!(survivor_id == id_a || survivor_id == id_b);
    victim.kill();
    eventually(90, "every task on the survivor", || async {
        let src = task_workers(&survivor.url(), "src").await;
        let sink = task_workers(&survivor.url(), "sink").await;
        (src == [survivor_id.clone()] && sink == [survivor_id.clone()]).then_some(())
    })
    .await;

    // The moved source task resumes from the committed offset: new lines flow, old ones are
    // not re-read from the start of the file.
    std::fs::write(&input, "1\n2\n3\n4\n")?;
    eventually(60, "lines 3 and 4 after failover", || async {
        (distinct(lines(&output)) == ["1", "2", "3", "4"]).then_some(())
    })
    .await;
    let (_, st) = call(
        "GET",
        &format!("{}/connectors/src/status", survivor.url()),
        None,
    )
    .await;
    assert_eq!(st["connector"]["worker_id"], survivor_id.as_str());
    assert_eq!(st["connector"]["state"], "RUNNING");

    // A worker started later reads every config back from the config topic.
    let c = start_distributed(worker_props(&broker.bootstrap())).await?;
    let (_, names) = call("GET", &format!("{}/connectors", c.url()), None).await;
    assert_eq!(names, json!(["sink", "src"]));
    let (_, cfg) = call("GET", &format!("{}/connectors/sink/config", c.url()), None).await;
    assert_eq!(cfg["topics"], "dist-lines");

    // Deleting through one worker removes it everywhere.
    let (s, _) = call("DELETE", &format!("{}/connectors/sink", c.url()), None).await;
    assert_eq!(s, 204);
    eventually(30, "sink deleted on the survivor", || async {
        let (s, _) = call("GET", &format!("{}/connectors/sink", survivor.url()), None).await;
        (s == 404).then_some(())
    })
    .await;
    // A clean shutdown leaves the group at once (no wait for the session timeout).
    let id_c = c.worker().worker_id().to_string();
    let admin = fjord_client::Admin::new(fjord_client::AdminConfig::new(broker.bootstrap()))?;
    eventually(60, "the third worker in the group", || async {
        let group = admin.describe_groups(&["connect-cluster"]).await.ok()?;
        group[0]
            .members
            .iter()
            .any(|m| m.client_id == id_c)
            .then_some(())
    })
    .await;
    c.shutdown().await;
    let group = admin.describe_groups(&["connect-cluster"]).await?;
    let members: Vec<&str> = group[0]
        .members
        .iter()
        .map(|m| m.client_id.as_str())
        .collect();
    assert!(
        !members.contains(&id_c.as_str()),
        "{id_c} still in {members:?}"
    );
    survivor.shutdown().await;
    broker.stop().await;
    Ok(())
}
