//! `cargo xtask layers`: the crate layering of DESIGN.md §2, checked.
//!
//! Rules, for every workspace package named `fjord-<crate>`:
//! * `<crate>` must be in [`LAYERS`] (a new crate needs a row there and in DESIGN.md §2);
//! * a dependency on another `fjord-*` crate must be a `path` dependency (no registry or git copy);
//! * normal and build dependencies may only follow the edges of [`LAYERS`];
//! * dev-dependencies may additionally use any crate on a lower or equal level (levels are derived
//!   from [`LAYERS`]: a crate sits one above the highest crate it may depend on), except `rpc`,
//!   which only the crates allowed to depend on it may touch, and never `fjord-broker` from a
//!   library crate ("nothing depends on broker"; only the `fjord` binary may).
//!
//! Workspace members not named `fjord-*` (xtask) are tooling and exempt.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::util::Workspace;

/// DESIGN.md §2, "Allowed dependency edges": crate → the crates it may depend on.
pub(crate) const LAYERS: &[(&str, &[&str])] = &[
    ("common", &[]),
    ("protocol", &["common"]),
    ("rpc", &[]),
    ("storage", &["common", "protocol"]),
    ("replication", &["common", "protocol", "storage"]),
    ("metadata", &["common", "protocol", "storage"]),
    ("coordinator", &["common", "protocol", "storage"]),
    ("client", &["common", "protocol"]),
    ("connect", &["common", "protocol", "client"]),
    ("streams", &["common", "protocol", "client"]),
    (
        "broker",
        &[
            "common",
            "protocol",
            "rpc",
            "storage",
            "replication",
            "metadata",
            "coordinator",
        ],
    ),
    ("cli", &["broker", "client", "connect"]),
];

const PREFIX: &str = "fjord-";

/// How a dependency is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DepKind {
    Normal,
    Build,
    Dev,
}

impl fmt::Display for DepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DepKind::Normal => "dependency",
            DepKind::Build => "build-dependency",
            DepKind::Dev => "dev-dependency",
        })
    }
}

/// One declared dependency of a workspace package.
#[derive(Clone, Debug)]
pub(crate) struct Dep {
    pub(crate) name: String,
    pub(crate) kind: DepKind,
    pub(crate) is_path: bool,
}

/// One workspace package, as far as layering cares.
#[derive(Clone, Debug)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) is_lib: bool,
    pub(crate) deps: Vec<Dep>,
}

/// The outcome of [`check`].
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) crates: usize,
    pub(crate) edges: usize,
    pub(crate) exempt: Vec<String>,
    pub(crate) violations: Vec<String>,
}

/// Checks the workspace and prints the result; an error when there is any violation.
pub(crate) fn run(ws: &Workspace) -> Result<(), String> {
    let packages = packages_from_metadata(&ws.metadata)?;
    let report = check(&packages);
    println!(
        "layers: {} fjord crates, {} dependency edges between them checked against DESIGN.md §2 (exempt: {})",
        report.crates,
        report.edges,
        if report.exempt.is_empty() {
            "none".to_owned()
        } else {
            report.exempt.join(", ")
        }
    );
    if report.violations.is_empty() {
        println!("layers: OK");
        Ok(())
    } else {
        for v in &report.violations {
            println!("layers: VIOLATION {v}");
        }
        Err(format!(
            "{} layering violation(s); the allowed edges are in DESIGN.md §2 and xtask/src/layers.rs",
            report.violations.len()
        ))
    }
}

/// Extracts the workspace packages from `cargo metadata --format-version 1 --no-deps`.
pub(crate) fn packages_from_metadata(metadata: &Value) -> Result<Vec<Package>, String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("`cargo metadata` has no packages array")?;
    packages
        .iter()
        .map(|p| {
            let name = p["name"]
                .as_str()
                .ok_or("package without a name")?
                .to_owned();
            let is_lib = p["targets"].as_array().into_iter().flatten().any(|t| {
                t["kind"].as_array().is_some_and(|kinds| {
                    kinds.iter().any(|k| {
                        matches!(
                            k.as_str(),
                            Some("lib" | "rlib" | "dylib" | "cdylib" | "staticlib" | "proc-macro")
                        )
                    })
                })
            });
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let kind = match d["kind"].as_str() {
                        None | Some("normal") => DepKind::Normal,
                        Some("build") => DepKind::Build,
                        Some("dev") => DepKind::Dev,
                        Some(other) => return Err(format!("unknown dependency kind {other:?}")),
                    };
                    Ok(Dep {
                        name: d["name"]
                            .as_str()
                            .ok_or("dependency without a name")?
                            .to_owned(),
                        kind,
                        is_path: d["path"].is_string(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Package { name, is_lib, deps })
        })
        .collect()
}

/// Level of each crate: 0 for crates that may depend on nothing, else one more than the highest
/// crate it may depend on.
pub(crate) fn levels() -> BTreeMap<&'static str, usize> {
    fn level_of(
        krate: &'static str,
        levels: &mut BTreeMap<&'static str, usize>,
        depth: usize,
    ) -> usize {
        if let Some(&l) = levels.get(krate) {
            return l;
        }
        assert!(depth <= LAYERS.len(), "cycle in LAYERS through {krate}");
        let allowed = allowed(krate).unwrap_or(&[]);
        let level = allowed
            .iter()
            .map(|d| level_of(d, levels, depth + 1) + 1)
            .max()
            .unwrap_or(0);
        levels.insert(krate, level);
        level
    }
    let mut levels = BTreeMap::new();
    for (krate, _) in LAYERS {
        level_of(krate, &mut levels, 0);
    }
    levels
}

fn allowed(krate: &str) -> Option<&'static [&'static str]> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == krate)
        .map(|(_, deps)| *deps)
}

/// Applies the rules in the module docs.
pub(crate) fn check(packages: &[Package]) -> Report {
    let levels = levels();
    let mut report = Report::default();
    for package in packages {
        let Some(krate) = package.name.strip_prefix(PREFIX) else {
            report.exempt.push(package.name.clone());
            continue;
        };
        report.crates += 1;
        let Some(allowed_normal) = allowed(krate) else {
            report.violations.push(format!(
                "{}: unknown crate `{krate}`: add it to the table in DESIGN.md §2 and to LAYERS in xtask/src/layers.rs",
                package.name
            ));
            continue;
        };
        let level = levels[krate];
        for dep in &package.deps {
            let Some(target) = dep.name.strip_prefix(PREFIX) else {
                continue;
            };
            report.edges += 1;
            let edge = format!("{} -> {} ({})", package.name, dep.name, dep.kind);
            if !dep.is_path {
                report.violations.push(format!(
                    "{edge}: fjord crates must depend on each other by path (use `{}.workspace = true`)",
                    dep.name
                ));
            }
            let Some(&target_level) = levels.get(target) else {
                report.violations.push(format!(
                    "{edge}: `{}` is not a crate of DESIGN.md §2",
                    dep.name
                ));
                continue;
            };
            if allowed_normal.contains(&target) {
                continue;
            }
            let ok = match dep.kind {
                DepKind::Normal | DepKind::Build => false,
                DepKind::Dev => {
                    if target == "broker" && package.is_lib {
                        report.violations.push(format!(
                            "{edge}: a library crate never depends on fjord-broker, not even in tests; put such tests in crates/cli/tests or the broker crate"
                        ));
                        continue;
                    }
                    target != krate && target != "rpc" && target_level <= level
                }
            };
            if !ok {
                let may = if allowed_normal.is_empty() {
                    "no fjord crate".to_owned()
                } else {
                    allowed_normal.join(", ")
                };
                let extra = if dep.kind == DepKind::Dev {
                    format!(
                        " (dev-dependencies also: crates on level <= {level}, except rpc; `{target}` is level {target_level})"
                    )
                } else {
                    String::new()
                };
                report
                    .violations
                    .push(format!("{edge}: `{krate}` may depend on {may}{extra}"));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, is_lib: bool, deps: &[(&str, DepKind)]) -> Package {
        Package {
            name: name.to_owned(),
            is_lib,
            deps: deps
                .iter()
                .map(|(n, kind)| Dep {
                    name: (*n).to_owned(),
                    kind: *kind,
                    is_path: true,
                })
                .collect(),
        }
    }

    #[test]
    fn levels_follow_the_table() {
        let l = levels();
        assert_eq!(l["common"], 0);
        assert_eq!(l["rpc"], 0);
        assert_eq!(l["protocol"], 1);
        assert_eq!(l["storage"], 2);
        assert_eq!(l["client"], 2);
        assert_eq!(l["replication"], 3);
        assert_eq!(l["connect"], 3);
        assert_eq!(l["broker"], 4);
        assert_eq!(l["cli"], 5);
        assert_eq!(l.len(), LAYERS.len());
    }

    #[test]
    fn allowed_edges_pass() {
        let packages = vec![
            pkg("fjord-common", true, &[]),
            pkg("fjord-protocol", true, &[("fjord-common", DepKind::Normal)]),
            pkg(
                "fjord-storage",
                true,
                &[
                    ("fjord-common", DepKind::Normal),
                    ("fjord-protocol", DepKind::Build),
                    ("tempfile", DepKind::Dev),
                ],
            ),
            pkg(
                "fjord-cli",
                false,
                &[
                    ("fjord-broker", DepKind::Normal),
                    ("fjord-storage", DepKind::Dev),
                ],
            ),
            pkg("xtask", false, &[("serde_json", DepKind::Normal)]),
        ];
        let report = check(&packages);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!(report.crates, 4);
        assert_eq!(report.edges, 5);
        assert_eq!(report.exempt, vec!["xtask".to_owned()]);
    }

    #[test]
    fn upward_and_sideways_edges_fail() {
        let packages = vec![
            pkg("fjord-storage", true, &[("fjord-client", DepKind::Normal)]),
            pkg("fjord-client", true, &[("fjord-storage", DepKind::Normal)]),
            pkg(
                "fjord-replication",
                true,
                &[("fjord-metadata", DepKind::Build)],
            ),
            pkg("fjord-coordinator", true, &[("fjord-rpc", DepKind::Normal)]),
        ];
        let report = check(&packages);
        assert_eq!(report.violations.len(), 4, "{:?}", report.violations);
    }

    #[test]
    fn dev_dependencies_may_go_lower_or_equal_but_never_to_broker_or_rpc() {
        let packages = vec![
            // equal level: fine for tests
            pkg(
                "fjord-coordinator",
                true,
                &[("fjord-replication", DepKind::Dev)],
            ),
            // higher level: not fine
            pkg("fjord-storage", true, &[("fjord-metadata", DepKind::Dev)]),
            // broker from a library: never
            pkg("fjord-client", true, &[("fjord-broker", DepKind::Dev)]),
            // rpc: only broker
            pkg("fjord-metadata", true, &[("fjord-rpc", DepKind::Dev)]),
            // broker from the binary crate: fine
            pkg("fjord-cli", false, &[("fjord-broker", DepKind::Dev)]),
        ];
        let report = check(&packages);
        assert_eq!(report.violations.len(), 3, "{:?}", report.violations);
        assert!(report.violations[0].contains("fjord-storage -> fjord-metadata"));
        assert!(report.violations[1].contains("never depends on fjord-broker"));
        assert!(report.violations[2].contains("fjord-metadata -> fjord-rpc"));
    }

    #[test]
    fn registry_copies_and_unknown_crates_fail() {
        let mut storage = pkg("fjord-storage", true, &[("fjord-common", DepKind::Normal)]);
        storage.deps[0].is_path = false;
        let packages = vec![
            storage,
            pkg("fjord-gizmo", true, &[]),
            pkg("fjord-broker", true, &[("fjord-gadget", DepKind::Normal)]),
        ];
        let report = check(&packages);
        assert_eq!(report.violations.len(), 3, "{:?}", report.violations);
        assert!(report.violations[0].contains("by path"));
        assert!(report.violations[1].contains("unknown crate `gizmo`"));
        assert!(report.violations[2].contains("not a crate of DESIGN.md"));
    }

    #[test]
    fn parses_cargo_metadata() {
        let metadata: Value = serde_json::from_str(
            r#"{"packages": [{
                "name": "fjord-storage",
                "targets": [{"kind": ["lib"], "name": "fjord_storage"}, {"kind": ["bench"], "name": "log"}],
                "dependencies": [
                    {"name": "fjord-common", "kind": null, "path": "/w/crates/common"},
                    {"name": "fjord-protocol", "kind": "build", "path": "/w/crates/protocol"},
                    {"name": "proptest", "kind": "dev", "source": "registry+https://github.com/rust-lang/crates.io-index"}
                ]
            }]}"#,
        )
        .expect("valid JSON");
        let packages = packages_from_metadata(&metadata).expect("parses");
        assert_eq!(packages.len(), 1);
        assert!(packages[0].is_lib);
        assert_eq!(packages[0].deps.len(), 3);
        assert_eq!(packages[0].deps[0].kind, DepKind::Normal);
        assert!(packages[0].deps[0].is_path);
        assert_eq!(packages[0].deps[1].kind, DepKind::Build);
        assert_eq!(packages[0].deps[2].kind, DepKind::Dev);
        assert!(!packages[0].deps[2].is_path);
    }
}
