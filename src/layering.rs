//! The layer rules of `lib.rs`, checked against the source: each top-level
//! module may name only the modules listed for it, and one service never
//! names another. A change that breaks a rule fails here with the file and
//! the path it used.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which top-level modules each one may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("mqtt", &[]),
    ("ops", &[]),
    ("net", &["mqtt", "ops"]),
    ("line", &["mqtt", "net", "ops"]),
    ("client", &["mqtt", "net", "ops"]),
    ("service", &["mqtt", "net", "line", "ops"]),
    (
        "tools",
        &["mqtt", "net", "line", "ops", "client", "service"],
    ),
    (
        "cli",
        &["mqtt", "net", "line", "ops", "client", "service", "tools"],
    ),
];

/// The services, each a folder under `service/` that imports no other.
const SERVICES: &[&str] = &["r_proxy", "s_proxy", "scion_quic", "scion_udp"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names that follow `prefix` in `text`, e.g. `crate::` -> `net`.
fn names_after<'a>(text: &'a str, prefix: &str) -> BTreeSet<&'a str> {
    text.match_indices(prefix)
        .filter_map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

/// Every `crate::<module>` a file under `src/<module>` names, by file.
fn uses_of(module: &str) -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src.join(module), &mut files);
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    files
        .into_iter()
        .filter_map(|f| std::fs::read_to_string(&f).ok().map(|text| (f, text)))
        .collect()
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let mut broken = Vec::new();
    for (module, allowed) in ALLOWED {
        let files = uses_of(module);
        assert!(!files.is_empty(), "no source found for `{module}`");
        for (file, text) in files {
            for used in names_after(&text, "crate::") {
                if used != *module
                    && ALLOWED.iter().any(|(m, _)| *m == used)
                    && !allowed.contains(&used)
                {
                    broken.push(format!("{}: {module} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layer rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_service_uses_another() {
    let mut broken = Vec::new();
    for (file, text) in uses_of("service") {
        let Some(own) = SERVICES
            .iter()
            .find(|s| file.components().any(|c| c.as_os_str() == **s))
        else {
            continue;
        };
        for used in names_after(&text, "crate::service::") {
            if SERVICES.contains(&used) && used != *own {
                broken.push(format!("{}: {own} uses service::{used}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "services depend on each other:\n{}",
        broken.join("\n")
    );
}
