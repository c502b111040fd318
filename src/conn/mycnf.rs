//! `~/.my.cnf`-style option files, read the way the mysql client reads them: `[client]` first,
//! then the tool's own group, later values win. Only the keys replmend uses are kept.

use std::collections::BTreeMap;
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MyCnfError {
    #[error("cannot read option file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// Options from one option file, by key (dashes and underscores are the same key, as in mysqld).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OptionFile {
    values: BTreeMap<String, String>,
}

/// The groups replmend reads, in order; a later group overrides an earlier one.
pub const GROUPS: &[&str] = &["client", "replmend"];

impl OptionFile {
    pub fn load(path: &Path) -> Result<OptionFile, MyCnfError> {
        let text = std::fs::read_to_string(path).map_err(|source| MyCnfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self::parse(&text))
    }

    pub fn parse(text: &str) -> OptionFile {
        let mut per_group: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut group = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                group = name.trim().to_ascii_lowercase();
                continue;
            }
            if line.starts_with('!') {
                // !include / !includedir: not followed; DBAs keep credentials in the main file.
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), unquote(strip_comment(v.trim()))),
                None => (line, String::new()),
            };
            per_group
                .entry(group.clone())
                .or_default()
                .insert(normalize_key(key), value);
        }
        let mut values = BTreeMap::new();
        for g in GROUPS {
            if let Some(kv) = per_group.remove(*g) {
                values.extend(kv);
            }
        }
        OptionFile { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(&normalize_key(key)).map(String::as_str)
    }
}

fn normalize_key(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('-', "_")
}

fn strip_comment(value: &str) -> &str {
    if value.starts_with('"') || value.starts_with('\'') {
        return value;
    }
    match value.find(" #") {
        Some(i) => value[..i].trim_end(),
        None => value,
    }
}

fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
        let inner = &value[1..value.len() - 1];
        // The client understands backslash escapes inside quoted values.
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('s') => out.push(' '),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_group_then_own_group_override() {
        let f = OptionFile::parse(
            "# comment\n[mysqld]\nport=1\n[client]\nuser = dba\npassword=\"p#ss w\\\"d\"\nport=3306\nhost=127.0.0.1 # primary\n[replmend]\nport=3307\nssl-mode=REQUIRED\n",
        );
        assert_eq!(f.get("user"), Some("dba"));
        assert_eq!(f.get("password"), Some("p#ss w\"d"));
        assert_eq!(f.get("port"), Some("3307"));
        assert_eq!(f.get("host"), Some("127.0.0.1"));
        assert_eq!(f.get("ssl_mode"), Some("REQUIRED"));
    }

    #[test]
    fn ignores_other_groups_and_includes() {
        let f = OptionFile::parse("!includedir /etc/mysql/conf.d/\n[mysql]\nuser=x\n");
        assert_eq!(f.get("user"), None);
    }
}
