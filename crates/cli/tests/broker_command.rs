//! The `fjord broker` command line: configuration errors stop start-up with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn fjord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fjord"))
}

#[test]
fn bad_config_value_names_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = fjord()
        .args(["broker", "--override", "num.partitions=abc"])
        .arg("--override")
        .arg(format!("log.dirs={}", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("num.partitions"), "{stderr}");
    assert!(stderr.contains("abc"), "{stderr}");
}

#[test]
fn bad_listener_and_missing_file_are_reported() {
    let out = fjord()
        .args(["broker", "--override", "listeners=PLAINTEXT://localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listeners"));

    let out = fjord()
        .args(["broker", "--config", "/nonexistent/server.properties"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/server.properties"));
}

#[test]
fn properties_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "log.segment.bytes=12\n").unwrap();
    let out = fjord().arg("broker").arg(&props).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("log.segment.bytes"), "{stderr}");
}
