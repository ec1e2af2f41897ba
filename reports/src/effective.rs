//! The effective scenario of a run: its scenario text after `--set`, parsed,
//! without the keys that only name the build under test — what two runs
//! must share to be compared (by the A/B gate and by a stored baseline).

/// The scenario a run really ran, from its text after `--set` (the
/// record's `scenario.text`, or a baseline's), without what names the
/// build under test.
pub fn effective_scenario(text: &str) -> Result<toml::Table, String> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| format!("its scenario text does not parse: {e}"))?;
    if let Some(toml::Value::Table(topology)) = table.get_mut("topology") {
        for key in ["server_bin", "urls", "kind"] {
            topology.remove(key);
        }
    }
    Ok(table)
}

/// The first key (dotted) whose value differs between two scenarios.
pub fn first_difference(a: &toml::Table, b: &toml::Table, prefix: &str) -> Option<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let path = format!("{prefix}{key}");
        match (a.get(key), b.get(key)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                if let Some(d) = first_difference(x, y, &format!("{path}.")) {
                    return Some(d);
                }
            }
            (x, y) if x != y => return Some(path),
            _ => {}
        }
    }
    None
}
