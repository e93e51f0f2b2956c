//! `fjord connect standalone|distributed` as a process: properties files in, REST API up, data
//! flowing, clean exit on SIGTERM; configuration errors name the key.

mod connect_support;
mod in_process;

use connect_support::{call, eventually};
use in_process::{TestBroker, TestError};
use serde_json::json;
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_command_runs_connectors_from_properties_files() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    std::fs::write(&input, "x\ny\n")?;
    let port = free_port();
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        format!(
            "bootstrap.servers={}\nlisteners=http://127.0.0.1:{port}\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.storage.file.filename={}\noffset.flush.interval.ms=100\n",
            broker.bootstrap(),
            dir.path().join("offsets").display()
        ),
    )?;
    let source = dir.path().join("source.properties");
    std::fs::write(
        &source,
        format!(
            "name=local-file-source\nconnector.class=FileStreamSource\ntasks.max=1\nfile={}\ntopic=cli-lines\n",
            input.display()
        ),
    )?;
    let sink = dir.path().join("sink.properties");
    std::fs::write(
        &sink,
        format!(
            "name=local-file-sink\nconnector.class=FileStreamSink\ntasks.max=1\nfile={}\ntopics=cli-lines\n",
            output.display()
        ),
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["connect", "standalone"])
        .arg(&worker)
        .arg(&source)
        .arg(&sink)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let names = eventually(60, "the REST API", || async {
        let r = fjord_connect::http::request(
            "GET",
            &format!("{base}/connectors"),
            None,
            std::time::Duration::from_secs(5),
        )
        .await
        .ok()?;
        Some(r.json())
    })
    .await;
    assert_eq!(names, json!(["local-file-sink", "local-file-source"]));
    eventually(60, "lines copied by the worker process", || async {
        (std::fs::read_to_string(&output).unwrap_or_default() == "x\ny\n").then_some(())
    })
    .await;
    let (_, status) = call(
        "GET",
        &format!("{base}/connectors/local-file-source/status"),
        None,
    )
    .await;
    assert_eq!(
        status["connector"]["worker_id"],
        format!("127.0.0.1:{port}")
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    broker.stop().await;
    Ok(())
}

#[test]
fn distributed_command_names_the_missing_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        "bootstrap.servers=127.0.0.1:1\nlisteners=http://127.0.0.1:0\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["connect", "distributed"])
        .arg(&worker)
        .output()
        .expect("run fjord");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("group.id"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["connect", "standalone"])
        .arg(dir.path().join("missing.properties"))
        .output()
        .expect("run fjord");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.properties"));
}

/// A `fjord connect distributed` process, killed with SIGKILL when dropped.
struct WorkerProcess {
    child: std::process::Child,
    url: String,
}

impl WorkerProcess {
    fn start(dir: &std::path::Path, bootstrap: &str, name: &str) -> WorkerProcess {
        let port = free_port();
        let props = dir.join(format!("{name}.properties"));
        std::fs::write(
            &props,
            format!(
                "bootstrap.servers={bootstrap}\nlisteners=http://127.0.0.1:{port}\n\
                 group.id=cli-cluster\nconfig.storage.topic=cli-configs\n\
                 offset.storage.topic=cli-offsets\nstatus.storage.topic=cli-status\n\
                 session.timeout.ms=6000\nheartbeat.interval.ms=500\n\
                 key.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 value.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 offset.flush.interval.ms=50\n"
            ),
        )
        .expect("write worker.properties");
        let child = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(["connect", "distributed"])
            .arg(&props)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fjord connect distributed");
        WorkerProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn id(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_processes_survive_a_sigkill() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    std::fs::write(&input, "p1\n")?;
    let a = WorkerProcess::start(dir.path(), &broker.bootstrap(), "a");
    let b = WorkerProcess::start(dir.path(), &broker.bootstrap(), "b");
    for w in [&a, &b] {
        eventually(60, "a worker's REST API", || async {
            let url = format!("{}/connectors", w.url);
            fjord_connect::http::request("GET", &url, None, std::time::Duration::from_secs(5))
                .await
                .ok()
                .filter(|r| r.status == 200)
        })
        .await;
    }
    let (s, _) = call(
        "PUT",
        &format!("{}/connectors/src/config", a.url),
        Some(json!({"connector.class": "FileStreamSource", "file": input.display().to_string(), "topic": "cli-dist", "tasks.max": "1"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = call(
        "PUT",
        &format!("{}/connectors/sink/config", b.url),
        Some(json!({"connector.class": "FileStreamSink", "file": output.display().to_string(), "topics": "cli-dist"})),
    )
    .await;
    assert_eq!(s, 201);
    let read = || std::fs::read_to_string(&output).unwrap_or_default();
    eventually(60, "p1 copied", || async {
        read().contains("p1").then_some(())
    })
    .await;
    // Both workers report both tasks running, spread over the two processes.
    let owners = eventually(60, "both tasks running on two workers", || async {
        let (_, src) = call("GET", &format!("{}/connectors/src/status", b.url), None).await;
        let (_, sink) = call("GET", &format!("{}/connectors/sink/status", a.url), None).await;
        let owner = |s: &serde_json::Value| {
            (s["tasks"][0]["state"] == "RUNNING")
                .then(|| s["tasks"][0]["worker_id"].as_str().map(str::to_string))
                .flatten()
        };
        let (o1, o2) = (owner(&src)?, owner(&sink)?);
        (o1 != o2).then_some((o1, o2))
    })
    .await;
    // SIGKILL the worker running the source task; the other one takes over both tasks.
    let (victim, survivor) = if owners.0 == a.id() { (a, b) } else { (b, a) };
    drop(victim);
    let sid = survivor.id();
    eventually(90, "both tasks on the survivor", || async {
        let (_, src) = call(
            "GET",
            &format!("{}/connectors/src/status", survivor.url),
            None,
        )
        .await;
        let (_, sink) = call(
            "GET",
            &format!("{}/connectors/sink/status", survivor.url),
            None,
        )
        .await;
        (src["tasks"][0]["worker_id"] == sid.as_str()
            && src["tasks"][0]["state"] == "RUNNING"
            && sink["tasks"][0]["worker_id"] == sid.as_str())
        .then_some(())
    })
    .await;
    std::fs::write(&input, "p1\np2\n")?;
    eventually(60, "p2 copied after the kill", || async {
        read().contains("p2").then_some(())
    })
    .await;
    let lines: Vec<String> = read().lines().map(str::to_string).collect();
    assert!(lines.iter().all(|l| l == "p1" || l == "p2"), "{lines:?}");
    drop(survivor);
    broker.stop().await;
    Ok(())
}
