//! Every endpoint of the Kafka Connect REST API on a standalone worker, over HTTP, with Kafka
//! Connect's JSON shapes and error bodies; pause/resume/stop checked against the data flow.

mod connect_support;
mod in_process;

use connect_support::{call, eventually, read_topic};
use fjord_connect::config::parse_properties;
use fjord_connect::runtime::start_standalone;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_endpoints() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "a\n")?;
    let worker = start_standalone(
        parse_properties(&format!(
            "bootstrap.servers={}\nlisteners=http://127.0.0.1:0\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.flush.interval.ms=50\n",
            broker.bootstrap()
        )),
        vec![],
    )
    .await?;
    let base = worker.url();
    let url = |p: &str| format!("{base}{p}");

    // GET /
    let (s, root) = call("GET", &url("/"), None).await;
    assert_eq!(s, 200);
    assert!(
        root["version"].is_string() && root.get("commit").is_some(),
        "{root}"
    );
    let admin = fjord_client::Admin::new(fjord_client::AdminConfig::new(broker.bootstrap()))?;
    assert_eq!(
        root["kafka_cluster_id"],
        admin.describe_cluster().await?.cluster_id
    );
    let (s, e) = call("PATCH", &url("/connectors"), None).await;
    assert_eq!((s, e["error_code"].as_u64()), (405, Some(405)), "{e}");

    // GET /connector-plugins
    let (s, plugins) = call("GET", &url("/connector-plugins"), None).await;
    assert_eq!(s, 200);
    let sink = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["class"] == "org.apache.kafka.connect.file.FileStreamSinkConnector")
        .expect("FileStreamSinkConnector listed");
    assert_eq!(sink["type"], "sink");
    assert!(plugins
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["class"] == "io.fjord.connect.postgres.PostgresSourceConnector"));

    // PUT /connector-plugins/{plugin}/config/validate
    let (s, v) = call(
        "PUT",
        &url("/connector-plugins/FileStreamSinkConnector/config/validate"),
        Some(
            json!({"connector.class": "FileStreamSinkConnector", "name": "x", "tasks.max": "zero"}),
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "FileStreamSinkConnector");
    assert_eq!(v["error_count"], 3, "tasks.max, topics and file: {v}");
    let tasks_max = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["definition"]["name"] == "tasks.max")
        .unwrap();
    assert_eq!(tasks_max["definition"]["type"], "INT");
    assert!(tasks_max["value"]["errors"][0]
        .as_str()
        .unwrap()
        .contains("Not a number"));
    let (s, v) = call(
        "PUT",
        &url("/connector-plugins/FileStreamSinkConnector/config/validate"),
        Some(json!({"connector.class": "FileStreamSinkConnector", "name": "x", "topics": "t", "file": "/tmp/x"})),
    )
    .await;
    assert_eq!((s, v["error_count"].as_u64()), (200, Some(0)), "{v}");
    let (s, v) = call(
        "PUT",
        &url("/connector-plugins/NoSuchConnector/config/validate"),
        Some(json!({})),
    )
    .await;
    assert_eq!((s, v["error_code"].as_u64()), (400, Some(400)), "{v}");

    // POST /connectors
    let source_config = json!({
        "connector.class": "FileStreamSource", "tasks.max": "1",
        "file": input.display().to_string(), "topic": "rest-lines"
    });
    let (s, created) = call(
        "POST",
        &url("/connectors"),
        Some(json!({"name": "src", "config": source_config})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["name"], "src");
    assert_eq!(created["type"], "source");
    assert_eq!(created["config"]["topic"], "rest-lines");
    assert_eq!(created["config"]["name"], "src");
    assert_eq!(created["tasks"], json!([{"connector": "src", "task": 0}]));
    let (s, e) = call(
        "POST",
        &url("/connectors"),
        Some(json!({"name": "src", "config": source_config})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        e,
        json!({"error_code": 409, "message": "Connector src already exists"})
    );
    let (s, e) = call(
        "POST",
        &url("/connectors"),
        Some(
            json!({"name": "bad", "config": {"connector.class": "FileStreamSink", "topics": "t"}}),
        ),
    )
    .await;
    assert_eq!((s, e["error_code"].as_u64()), (400, Some(400)));
    assert!(
        e["message"].as_str().unwrap().starts_with(
            "Connector configuration is invalid and contains the following 1 error(s)"
        ),
        "{e}"
    );
    let (s, e) = call("POST", &url("/connectors"), Some(json!({"config": {}}))).await;
    assert_eq!((s, e["error_code"].as_u64()), (400, Some(400)));

    // PUT /connectors/{name}/config creates (201) then updates (200).
    let sink_config = json!({
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": output.display().to_string(), "topics": "rest-lines"
    });
    let (s, info) = call(
        "PUT",
        &url("/connectors/sink/config"),
        Some(sink_config.clone()),
    )
    .await;
    assert_eq!(s, 201, "{info}");
    assert_eq!(info["type"], "sink");
    let (s, _) = call(
        "PUT",
        &url("/connectors/sink/config"),
        Some(sink_config.clone()),
    )
    .await;
    assert_eq!(s, 200);
    let (s, info) = call("PUT", &url("/connectors/sink"), Some(sink_config.clone())).await;
    assert_eq!(
        (s, &info["name"]),
        (200, &json!("sink")),
        "PUT /connectors/{{name}} updates too"
    );
    let (s, e) = call(
        "PUT",
        &url("/connectors/sink/config"),
        Some(json!({"name": "other", "connector.class": "FileStreamSink"})),
    )
    .await;
    assert_eq!((s, e["error_code"].as_u64()), (400, Some(400)));

    // Data flows.
    eventually(60, "the first line in the sink file", || async {
        (lines(&output) == ["a"]).then_some(())
    })
    .await;

    // GET /connectors (plain and expanded), /connectors/{name}, /config, /tasks, /status.
    let (s, names) = call("GET", &url("/connectors"), None).await;
    assert_eq!((s, names), (200, json!(["sink", "src"])));
    let (_, expanded) = call("GET", &url("/connectors?expand=status&expand=info"), None).await;
    assert_eq!(expanded["src"]["status"]["connector"]["state"], "RUNNING");
    assert_eq!(expanded["sink"]["info"]["type"], "sink");
    let (s, info) = call("GET", &url("/connectors/src"), None).await;
    assert_eq!((s, &info["name"]), (200, &json!("src")));
    let (s, config) = call("GET", &url("/connectors/src/config"), None).await;
    assert_eq!(s, 200);
    assert_eq!(config["file"], input.display().to_string());
    let (s, tasks) = call("GET", &url("/connectors/src/tasks"), None).await;
    assert_eq!(s, 200);
    assert_eq!(tasks[0]["id"], json!({"connector": "src", "task": 0}));
    assert_eq!(tasks[0]["config"]["topic"], "rest-lines");
    let (s, status) = call("GET", &url("/connectors/src/status"), None).await;
    assert_eq!(s, 200);
    assert_eq!(status["name"], "src");
    assert_eq!(status["type"], "source");
    assert_eq!(status["connector"]["state"], "RUNNING");
    assert_eq!(
        status["connector"]["worker_id"],
        worker.worker().worker_id()
    );
    assert_eq!(status["tasks"][0]["id"], 0);
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
    let (s, ts) = call("GET", &url("/connectors/src/tasks/0/status"), None).await;
    assert_eq!(
        (s, &ts["state"], &ts["id"]),
        (200, &json!("RUNNING"), &json!(0))
    );
    let (s, e) = call("GET", &url("/connectors/src/tasks/7/status"), None).await;
    assert_eq!((s, e["error_code"].as_u64()), (404, Some(404)));

    // GET /connectors/{name}/offsets (KIP-875): source offsets and the sink's committed ones.
    let (s, offsets) = call("GET", &url("/connectors/src/offsets"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        offsets,
        json!({"offsets": [{"partition": {"filename": input.display().to_string()}, "offset": {"position": 2}}]})
    );
    let sink_offsets = eventually(30, "the sink's committed offset", || async {
        let (_, o) = call("GET", &url("/connectors/sink/offsets"), None).await;
        (o["offsets"][0]["offset"]["kafka_offset"] == 1).then_some(o)
    })
    .await;
    assert_eq!(
        sink_offsets["offsets"][0]["partition"],
        json!({"kafka_topic": "rest-lines", "kafka_partition": 0})
    );

    // 404s in Kafka Connect's shape.
    let (s, e) = call("GET", &url("/connectors/nope"), None).await;
    assert_eq!(s, 404);
    assert_eq!(
        e,
        json!({"error_code": 404, "message": "Connector nope not found"})
    );
    for (m, p) in [
        ("GET", "/connectors/nope/status"),
        ("GET", "/connectors/nope/offsets"),
        ("GET", "/connectors/nope/config"),
        ("PUT", "/connectors/nope/pause"),
        ("DELETE", "/connectors/nope"),
        ("POST", "/connectors/nope/restart"),
    ] {
        let (s, e) = call(m, &url(p), None).await;
        assert_eq!((s, e["error_code"].as_u64()), (404, Some(404)), "{m} {p}");
    }

    // PUT /pause stops the data flow; PUT /resume restarts it.
    let (s, _) = call("PUT", &url("/connectors/sink/pause"), None).await;
    assert_eq!(s, 202);
    eventually(30, "sink paused", || async {
        let (_, st) = call("GET", &url("/connectors/sink/status"), None).await;
        (st["connector"]["state"] == "PAUSED" && st["tasks"][0]["state"] == "PAUSED").then_some(())
    })
    .await;
    std::fs::write(&input, "a\nb\n")?;
    assert_eq!(
        read_topic(&broker.bootstrap(), "rest-lines", 1, 2)
            .await
            .len(),
        2,
        "the source still runs"
    );
    assert_eq!(lines(&output), ["a"], "a paused sink writes nothing");
    let (s, _) = call("PUT", &url("/connectors/sink/resume"), None).await;
    assert_eq!(s, 202);
    eventually(60, "line b after resume", || async {
        (lines(&output) == ["a", "b"]).then_some(())
    })
    .await;
    let (_, st) = call("GET", &url("/connectors/sink/status"), None).await;
    assert_eq!(st["tasks"][0]["state"], "RUNNING");

    // POST /restart (plain: 204; with includeTasks: 202 and the status), task restart.
    let (s, _) = call("POST", &url("/connectors/src/restart"), None).await;
    assert_eq!(s, 204);
    let (s, body) = call(
        "POST",
        &url("/connectors/src/restart?includeTasks=true&onlyFailed=false"),
        None,
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(body["name"], "src");
    let (s, _) = call("POST", &url("/connectors/src/tasks/0/restart"), None).await;
    assert_eq!(s, 204);
    let (s, e) = call("POST", &url("/connectors/src/tasks/5/restart"), None).await;
    assert_eq!((s, e["error_code"].as_u64()), (404, Some(404)));
    // After restarts the source resumes from its offset: no line is read twice.
    std::fs::write(&input, "a\nb\nc\n")?;
    eventually(60, "line c", || async {
        (lines(&output) == ["a", "b", "c"]).then_some(())
    })
    .await;

    // PUT /stop: connector STOPPED without tasks; resume brings it back.
    let (s, _) = call("PUT", &url("/connectors/src/stop"), None).await;
    assert_eq!(s, 204);
    let (_, st) = call("GET", &url("/connectors/src/status"), None).await;
    assert_eq!(st["connector"]["state"], "STOPPED");
    assert_eq!(st["tasks"], json!([]));
    let (_, tasks) = call("GET", &url("/connectors/src/tasks"), None).await;
    assert_eq!(tasks, json!([]));
    let (s, _) = call("PUT", &url("/connectors/src/resume"), None).await;
    assert_eq!(s, 202);
    std::fs::write(&input, "a\nb\nc\nd\n")?;
    eventually(60, "line d after resuming a stopped connector", || async {
        (lines(&output) == ["a", "b", "c", "d"]).then_some(())
    })
    .await;

    // DELETE /connectors/{name}
    let (s, _) = call("DELETE", &url("/connectors/src"), None).await;
    assert_eq!(s, 204);
    let (s, _) = call("GET", &url("/connectors/src"), None).await;
    assert_eq!(s, 404);
    let (_, names) = call("GET", &url("/connectors"), None).await;
    assert_eq!(names, json!(["sink"]));

    worker.shutdown().await;
    broker.stop().await;
    Ok(())
}
