//! Helpers of the Fjord Connect tests: a throwaway PostgreSQL server, a topic reader, REST calls.
#![allow(dead_code)]

use fjord_client::{Consumer, ConsumerConfig, ConsumerRecord, TopicPartition};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `secs`.
pub(crate) async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads every record of `topic` (partitions 0..partitions) until `n` arrived or 60 s passed.
pub(crate) async fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
) -> Vec<ConsumerRecord> {
    let mut consumer = Consumer::new(ConsumerConfig::new(bootstrap)).expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&tps).expect("assign");
    consumer.seek_to_beginning(&tps).expect("seek");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < n && Instant::now() < deadline {
        out.extend(
            consumer
                .poll(Duration::from_millis(200))
                .await
                .unwrap_or_default(),
        );
    }
    let _ = consumer.close().await;
    out
}

/// One HTTP call to the REST API; returns status and JSON body.
pub(crate) async fn call(
    method: &str,
    url: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let r = fjord_connect::http::request(method, url, body.as_ref(), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    (r.status, r.json())
}

/// A PostgreSQL server in a temporary directory on a free loopback port, stopped on drop.
pub(crate) struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<String>,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FJORD_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL not found: set FJORD_PG_BIN to the directory holding initdb/pg_ctl/postgres, \
             or install Debian's `postgresql` package (`cargo xtask test` installs it)"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl PgServer {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// Initialises and starts a server (superuser `fjord`, trust authentication).
    pub(crate) fn start() -> PgServer {
        let bin = pg_bin_dir();
        assert!(
            bin.join("pg_ctl").is_file(),
            "no pg_ctl in {} (FJORD_PG_BIN)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // PostgreSQL refuses to run as root: run it as the package's `postgres` user (or nobody).
        let run_as = is_root().then(|| {
            let user = if Command::new("id")
                .arg("postgres")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
            {
                "postgres"
            } else {
                "nobody"
            };
            let ok = Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status();
            assert!(
                ok.map(|s| s.success()).unwrap_or(false),
                "chown of the PostgreSQL temp dir failed"
            );
            user.to_string()
        });
        let mut server = PgServer {
            bin,
            data,
            run_as,
            port: 0,
            _dir: dir,
        };
        let out = server
            .command("initdb")
            .arg("-D")
            .arg(&server.data)
            .args(["-U", "fjord", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port picked now may be taken by the time the server binds: retry a few times.
        for attempt in 0..5 {
            let port = free_port();
            let sock = server._dir.path();
            let out = server
                .command("pg_ctl")
                .arg("-D")
                .arg(&server.data)
                .arg("-l")
                .arg(sock.join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    sock.display()
                ))
                .args(["-w", "-t", "60", "start"])
                .output()
                .expect("run pg_ctl");
            if out.status.success() {
                server.port = port;
                return server;
            }
            eprintln!(
                "pg_ctl start attempt {attempt} failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let log = std::fs::read_to_string(server._dir.path().join("log")).unwrap_or_default();
        panic!("PostgreSQL did not start; log:\n{log}");
    }

    /// `jdbc:postgresql://127.0.0.1:<port>/postgres`.
    pub(crate) fn jdbc_url(&self) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL with psql; returns unaligned, tuples-only output or psql's error.
    pub(crate) fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "fjord",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs SQL with psql, panicking on errors.
    pub(crate) fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A tiny HTTP server on loopback that answers 503 to the first `fail` requests, 200 after,
/// and keeps the bodies of the accepted ones.
pub(crate) struct HttpCapture {
    pub(crate) url: String,
    pub(crate) bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    pub(crate) hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpCapture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpCapture {
    pub(crate) async fn start(fail: usize) -> HttpCapture {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/events", listener.local_addr().expect("addr"));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (b, h) = (bodies.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let n = h.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let body = loop {
                    let r = s.read(&mut chunk).await.unwrap_or(0);
                    if r == 0 {
                        break Vec::new();
                    }
                    buf.extend_from_slice(&chunk[..r]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break buf[end + 4..end + 4 + len].to_vec();
                    }
                };
                let status = if n < fail {
                    "503 Service Unavailable"
                } else {
                    if let Ok(v) = serde_json::from_slice(&body) {
                        b.lock().expect("lock").push(v);
                    }
                    "200 OK"
                };
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        HttpCapture {
            url,
            bodies,
            hits,
            task,
        }
    }

    /// The `value` of every record posted so far, in order.
    pub(crate) fn values(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .map(|r| r["value"].clone())
            .collect()
    }
}
