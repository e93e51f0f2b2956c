//! Small helpers: running commands, finding programs, reading `cargo metadata`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The cargo that runs us (`$CARGO`, set by `cargo run`), else `cargo` from `PATH`.
pub(crate) fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Renders a command the way a user would type it, for logs and error messages.
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains([' ', '\'', '"', '*', '(', ')', '&', '|', '$']) {
            parts.push(format!("'{}'", arg.replace('\'', r"'\''")));
        } else {
            parts.push(arg.into_owned());
        }
    }
    parts.join(" ")
}

/// Runs `cmd` with inherited stdio, logging it first; non-zero exit is an error.
pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = display(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// Runs `cmd` and returns its stdout; a failure includes its stderr.
pub(crate) fn output(cmd: &mut Command) -> Result<String, String> {
    let shown = display(cmd);
    let out = cmd
        .output()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The first executable called `name` on `PATH`.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// What xtask needs to know about the workspace, from `cargo metadata --no-deps`.
pub(crate) struct Workspace {
    /// The workspace root (where the root Cargo.toml is).
    pub(crate) root: PathBuf,
    /// Cargo's target directory (honours `CARGO_TARGET_DIR`); the interop clients live under it.
    pub(crate) target_dir: PathBuf,
    /// The raw `cargo metadata --format-version 1 --no-deps` document.
    pub(crate) metadata: Value,
}

impl Workspace {
    pub(crate) fn load() -> Result<Self, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("xtask's manifest dir has no parent")?
            .to_path_buf();
        let mut cmd = Command::new(cargo());
        cmd.current_dir(&root)
            .args(["metadata", "--format-version", "1", "--no-deps"]);
        let text = output(&mut cmd)?;
        let metadata: Value = serde_json::from_str(&text)
            .map_err(|e| format!("cannot parse `cargo metadata` output: {e}"))?;
        let target_dir = metadata["target_directory"]
            .as_str()
            .map(PathBuf::from)
            .ok_or("`cargo metadata` has no target_directory")?;
        Ok(Self {
            root,
            target_dir,
            metadata,
        })
    }

    /// Whether any workspace package has a `[[bench]]` target.
    pub(crate) fn has_bench_targets(&self) -> bool {
        has_bench_targets(&self.metadata)
    }
}

fn has_bench_targets(metadata: &Value) -> bool {
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .any(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bench"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bench_targets() {
        let with: Value = serde_json::from_str(
            r#"{"packages": [{"targets": [{"kind": ["lib"]}]}, {"targets": [{"kind": ["bench"]}]}]}"#,
        )
        .expect("valid JSON");
        let without: Value = serde_json::from_str(
            r#"{"packages": [{"targets": [{"kind": ["lib"]}, {"kind": ["test"]}]}]}"#,
        )
        .expect("valid JSON");
        assert!(has_bench_targets(&with));
        assert!(!has_bench_targets(&without));
    }
}
