//! `~/.my.cnf`-style option files, read the way the mysql client reads them: `[client]` first,
//! then the tool's own group, later values win; then the login file `mysql_config_editor`
//! writes, as the client layers it over them.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use thiserror::Error;

use super::mylogin;

#[derive(Debug, Error)]
pub enum MyCnfError {
    #[error("cannot read option file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "login file {path} not used: others may read or change it (mode {mode:04o}); mysql_config_editor makes it 0600 (chmod 600 {path})"
    )]
    LoginUnsafe { path: String, mode: u32 },
    #[error(
        "cannot read login file {path}: {why}; it is not as mysql_config_editor writes it (write it again with mysql_config_editor set)"
    )]
    LoginCorrupt { path: String, why: String },
    #[error(
        "--login-path {name}: {path} does not exist (mysql_config_editor set --login-path={name} … writes it; MYSQL_TEST_LOGIN_FILE names another file)"
    )]
    NoLoginFile { name: String, path: String },
    #[error(
        "--login-path {name}: {path} has no login path [{name}] (mysql_config_editor print --all lists them)"
    )]
    NoLoginPath { name: String, path: String },
}

/// Options from option files, by key (dashes and underscores are the same key, as in mysqld).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OptionFile {
    values: BTreeMap<String, String>,
    /// Every group the text had, read or not.
    groups: BTreeSet<String>,
}

/// The groups replmend reads, in order; a later group overrides an earlier one.
pub const GROUPS: &[&str] = &["client", "replmend"];

impl OptionFile {
    /// Reads `[client]` and `[replmend]` of an option file. As the mysql client does, a
    /// world-writable file is ignored with a warning (anyone could have put options in it).
    pub fn load(
        path: &Path,
        warn: &mut dyn FnMut(String),
    ) -> Result<Option<OptionFile>, MyCnfError> {
        let read_err = |source| MyCnfError::Read {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.is_file() && meta.permissions().mode() & 0o002 != 0 {
            warn(format!(
                "ignoring option file {}: it is world-writable",
                path.display()
            ));
            return Ok(None);
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        Ok(Some(Self::parse(&text)))
    }

    /// Reads the login file `mysql_config_editor` writes (`~/.mylogin.cnf`): `[client]`,
    /// `[replmend]` and, when a login path is named, its group, whose values win. Absent and
    /// unnamed: nothing. As the mysql client does, a file that others may read or write, or
    /// that its owner may execute, is not used: ignored with a warning when only read by
    /// default, refused when a login path was asked for (the credentials would silently not
    /// be the ones meant).
    pub fn load_login(
        path: &Path,
        login_path: Option<&str>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Option<OptionFile>, MyCnfError> {
        let shown = path.display().to_string();
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return match login_path {
                    Some(name) => Err(MyCnfError::NoLoginFile {
                        name: name.into(),
                        path: shown,
                    }),
                    None => Ok(None),
                };
            }
            Err(source) => {
                return Err(MyCnfError::Read {
                    path: shown,
                    source,
                });
            }
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_file() && mode & 0o177 != 0 {
            let refusal = MyCnfError::LoginUnsafe { path: shown, mode };
            return match login_path {
                Some(_) => Err(refusal),
                None => {
                    warn(refusal.to_string());
                    Ok(None)
                }
            };
        }
        let bytes = std::fs::read(path).map_err(|source| MyCnfError::Read {
            path: shown.clone(),
            source,
        })?;
        let text = mylogin::decrypt(&bytes).map_err(|why| MyCnfError::LoginCorrupt {
            path: shown.clone(),
            why,
        })?;
        let mut groups = GROUPS.to_vec();
        groups.extend(login_path);
        let file = Self::parse_groups(&text, &groups);
        if let Some(name) = login_path
            && !file.groups.contains(&name.to_ascii_lowercase())
        {
            return Err(MyCnfError::NoLoginPath {
                name: name.into(),
                path: shown,
            });
        }
        Ok(Some(file))
    }

    pub fn parse(text: &str) -> OptionFile {
        Self::parse_groups(text, GROUPS)
    }

    /// The options of `groups`, a later group overriding an earlier one.
    pub fn parse_groups(text: &str, groups: &[&str]) -> OptionFile {
        let mut per_group: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut group = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                group = name.trim().to_ascii_lowercase();
                per_group.entry(group.clone()).or_default();
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
        let seen = per_group.keys().cloned().collect();
        let mut values = BTreeMap::new();
        for g in groups {
            if let Some(kv) = per_group.remove(&g.to_ascii_lowercase()) {
                values.extend(kv);
            }
        }
        OptionFile {
            values,
            groups: seen,
        }
    }

    /// This file's values, then `later`'s over them (how the mysql client layers the login
    /// file over ~/.my.cnf).
    pub fn overlay(mut self, later: OptionFile) -> OptionFile {
        self.values.extend(later.values);
        self.groups.extend(later.groups);
        self
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
    fn login_path_group_wins_and_overlays_my_cnf() {
        let cnf = OptionFile::parse("[client]\nuser=dba\nport=3306\nssl-mode=REQUIRED\n");
        let login = OptionFile::parse_groups(
            "[client]\nuser = \"fromlogin\"\n[db2]\nhost = \"10.0.0.2\"\nport = 3307\n[db3]\nport=3308\n",
            &["client", "replmend", "db2"],
        );
        let f = cnf.overlay(login);
        assert_eq!(f.get("user"), Some("fromlogin"));
        assert_eq!(f.get("host"), Some("10.0.0.2"));
        assert_eq!(f.get("port"), Some("3307"));
        assert_eq!(f.get("ssl_mode"), Some("REQUIRED"));
    }

    fn login_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("replmend-mylogin-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn login_file_permissions_and_names() {
        let dir = login_dir("perm");
        let path = dir.join(".mylogin.cnf");
        let text = "[client]\nuser = \"root\"\n[db2]\nport = 3307\n";
        std::fs::write(&path, mylogin::encrypt(text, [7; 20])).unwrap();
        let set_mode =
            |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        set_mode(0o600);
        let mut warnings = Vec::new();
        let mut warn = |w: String| warnings.push(w);
        let f = OptionFile::load_login(&path, Some("db2"), &mut warn)
            .unwrap()
            .unwrap();
        assert_eq!((f.get("user"), f.get("port")), (Some("root"), Some("3307")));
        let e = OptionFile::load_login(&path, Some("db9"), &mut warn).unwrap_err();
        assert!(e.to_string().contains("has no login path [db9]"), "{e}");
        set_mode(0o644);
        let e = OptionFile::load_login(&path, Some("db2"), &mut warn).unwrap_err();
        assert!(e.to_string().contains("mode 0644"), "{e}");
        // Read by default only (no --login-path): ignored with a warning, as the client does.
        assert_eq!(
            OptionFile::load_login(&path, None, &mut warn).unwrap(),
            None
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("others may read"), "{}", warnings[0]);
        set_mode(0o600);
        std::fs::write(&path, b"not a login file at all, just text\n").unwrap();
        let e = OptionFile::load_login(&path, None, &mut |_| {}).unwrap_err();
        assert!(matches!(e, MyCnfError::LoginCorrupt { .. }), "{e}");
        assert!(!e.to_string().contains('{'), "{e}");
        let missing = dir.join("none.cnf");
        assert_eq!(
            OptionFile::load_login(&missing, None, &mut |_| {}).unwrap(),
            None
        );
        let e = OptionFile::load_login(&missing, Some("db2"), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn world_writable_option_file_is_ignored_with_a_warning() {
        let dir = login_dir("ww");
        let path = dir.join("my.cnf");
        std::fs::write(&path, "[client]\nuser=x\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut warnings = Vec::new();
        assert_eq!(
            OptionFile::load(&path, &mut |w| warnings.push(w)).unwrap(),
            None
        );
        assert!(warnings[0].contains("world-writable"), "{warnings:?}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let f = OptionFile::load(&path, &mut |_| {}).unwrap().unwrap();
        assert_eq!(f.get("user"), Some("x"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ignores_other_groups_and_includes() {
        let f = OptionFile::parse("!includedir /etc/mysql/conf.d/\n[mysql]\nuser=x\n");
        assert_eq!(f.get("user"), None);
    }
}
