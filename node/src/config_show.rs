//! `doin config show`: the configuration a node would run with, key by key, and where each
//! value came from (the built-in default, the file, or a `DOIN_*` variable). It reads what
//! `doin node` reads and starts nothing.

use crate::config::NodeConfig;
use figment::Figment;
use serde_json::{json, Value};
use std::path::Path;

/// One configuration key: its dotted name, its value, where the value came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub source: String,
}

/// Every key of the effective configuration, in the order of the configuration's sections.
pub fn settings(file: Option<&Path>) -> Result<Vec<Setting>, String> {
    let (cfg, fig) = NodeConfig::load_with_sources(file)?;
    let tree = serde_json::to_value(&cfg).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    flatten("", &tree, &fig, &mut out);
    Ok(out)
}

fn flatten(prefix: &str, v: &Value, fig: &Figment, out: &mut Vec<Setting>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, fig, out);
            }
        }
        _ => out.push(Setting {
            key: prefix.to_string(),
            value: v.clone(),
            source: source_of(fig, prefix),
        }),
    }
}

/// Where `key` got its value: `default`, `file PATH` or `env DOIN_…`. A key nothing set (an
/// optional one left empty) is `default`.
fn source_of(fig: &Figment, key: &str) -> String {
    let Some(meta) = fig.find_metadata(key) else {
        return "default".into();
    };
    if let Some(figment::Source::File(path)) = &meta.source {
        return format!("file {}", path.display());
    }
    if meta.name.contains("environment") {
        // The variable `NodeConfig::load` reads for it: `DOIN_` and the path, `__` between.
        return format!("env DOIN_{}", key.to_uppercase().replace('.', "__"));
    }
    "default".into()
}

/// The settings as lines `key = value  # source`, values in TOML's notation where JSON's
/// agrees with it (strings, numbers, booleans, arrays of those).
pub fn render_text(settings: &[Setting]) -> String {
    let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    let mut text = String::new();
    for s in settings {
        let value = match &s.value {
            Value::Null => "(not set)".to_string(),
            v => v.to_string(),
        };
        text.push_str(&format!(
            "{:width$} = {value}  # {}\n",
            s.key,
            s.source,
            width = width
        ));
    }
    text
}

/// The settings as one JSON document.
pub fn render_json(settings: &[Setting]) -> Value {
    Value::Array(
        settings
            .iter()
            .map(|s| json!({"key": s.key, "value": s.value, "source": s.source}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn each_value_says_whether_it_is_the_default_the_files_or_a_variables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/doin\"\n[rest]\nrate_limit_per_second = 7\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("DOIN_REST__ACCESS_LOG", "false");
            let all = settings(Some(&file)).map_err(|e| e.to_string())?;
            let find = |k: &str| all.iter().find(|s| s.key == k).cloned().unwrap();
            let from_file = find("data_dir");
            assert_eq!(from_file.value, json!("/srv/doin"));
            assert_eq!(from_file.source, format!("file {}", file.display()));
            assert_eq!(find("rest.rate_limit_per_second").value, json!(7));
            let from_env = find("rest.access_log");
            assert_eq!(from_env.value, json!(false));
            assert_eq!(from_env.source, "env DOIN_REST__ACCESS_LOG");
            let default = find("rest.listen");
            assert_eq!(
                (default.value, default.source.as_str()),
                (json!("127.0.0.1:8645"), "default")
            );
            // Every documented section is there, and nothing twice.
            assert!(all.iter().any(|s| s.key.starts_with("hub.")));
            let mut keys: Vec<&str> = all.iter().map(|s| s.key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), all.len());
            let text = render_text(&all);
            assert!(text.contains("rest.access_log"), "{text}");
            assert!(text.contains("# env DOIN_REST__ACCESS_LOG"), "{text}");
            Ok(())
        });
    }
}
