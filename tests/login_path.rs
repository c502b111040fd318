//! `--login-path` with a login file written by the real `mysql_config_editor` (MySQL 9.7's, in
//! the MySQL chroot; its password prompt driven through a pseudo-terminal by `script`), read
//! in the mysql client's order: ~/.my.cnf, then the login file's [client] and the login path,
//! then the command line. Against MariaDB 10.11 and MySQL 9.7.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// A directory inside the MySQL chroot (where mysql_config_editor runs), removed on drop.
struct ChrootDir {
    host: PathBuf,
    inside: PathBuf,
}

impl ChrootDir {
    fn new(tag: &str) -> ChrootDir {
        let inside = PathBuf::from(format!("/tmp/replmend-login-{tag}-{}", std::process::id()));
        let host = replmend_sandbox::mysql_chroot().join(inside.strip_prefix("/").unwrap());
        let _ = std::fs::remove_dir_all(&host);
        std::fs::create_dir_all(&host).unwrap();
        ChrootDir { host, inside }
    }
}

impl Drop for ChrootDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.host);
    }
}

/// `mysql_config_editor set --login-path=NAME … --password`, typing `password` at its prompt.
/// Exit 8 (bad input) with one sentence on stderr that says `words`.
fn refused(run: &Run, words: &str, flavor: impl std::fmt::Display) {
    assert_eq!(run.code, exit::BAD_INPUT, "{flavor}: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(words), "{}", run.stderr);
}

fn config_editor_set(login_file: &Path, name: &str, args: &[String], password: &str) {
    let command = format!(
        "chroot {} env MYSQL_TEST_LOGIN_FILE={} mysql_config_editor set --login-path={name} {} --password",
        replmend_sandbox::mysql_chroot().display(),
        login_file.display(),
        args.join(" ")
    );
    // The prompt reads the terminal: `script` gives it one. Typed only once the prompt shows,
    // because the prompt flushes what was typed ahead.
    let mut child = Command::new("script")
        .args(["-qc", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("password:") {
        let n = stdout.read(&mut byte).unwrap();
        assert!(
            n == 1,
            "no password prompt: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{password}\r").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "mysql_config_editor: {rest}");
}

#[test]
fn login_path_written_by_mysql_config_editor() {
    // Every character a DSN would need encoded, and a quote.
    let password = "p@ss:w/rd#%'x";
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
        sb.node("n1")
            .exec(&format!(
                "CREATE USER lp_user@'%' IDENTIFIED BY '{}'; GRANT ALL ON *.* TO lp_user@'%'",
                password.replace('\'', "''")
            ))
            .unwrap();
        let replica = sb.node("n2");
        replica.wait_caught_up(Duration::from_secs(30)).unwrap();
        let dir = ChrootDir::new(&flavor.to_string());
        let inside = dir.inside.join("login.cnf");
        let login_file = dir.host.join("login.cnf");
        let port = replica.port.to_string();
        config_editor_set(
            &inside,
            "db2",
            &[
                "--host=127.0.0.1".into(),
                format!("--port={port}"),
                "--user=lp_user".into(),
            ],
            password,
        );
        let file = login_file.to_str().unwrap();
        let with_file = |args: &[&str]| replmend_env(args, &[("MYSQL_TEST_LOGIN_FILE", file)]);

        let run = with_file(&["status", "--login-path", "db2", "--format", "json"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.json()["channels"][0]["health"], "healthy");

        // The login path overrides ~/.my.cnf (here --defaults-file) …
        let cnf = dir.host.join("my.cnf");
        std::fs::write(&cnf, "[client]\nuser=nobody\nport=1\npassword=wrong\n").unwrap();
        let cnf = cnf.to_str().unwrap();
        let run = with_file(&["status", "--defaults-file", cnf, "--login-path", "db2"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        // … and the command line overrides the login path: nothing listens on port 1.
        let run = with_file(&["status", "--login-path", "db2", "-P", "1"]);
        assert_eq!(run.code, exit::UNREACHABLE, "{flavor}: {}", run.stderr);
        let run = with_file(&[
            "status",
            "--login-path",
            "db2",
            "--replica",
            "mysql://lp_user:wrong@127.0.0.1:1",
        ]);
        assert_eq!(run.code, exit::UNREACHABLE, "{flavor}: {}", run.stderr);
        // Without --login-path only the login file's [client] is read: none here, so the
        // option file's port 1 stands.
        let run = with_file(&["status", "--defaults-file", cnf]);
        assert_eq!(run.code, exit::UNREACHABLE, "{flavor}: {}", run.stderr);

        // A [client] login path is read by default, with no option at all.
        config_editor_set(
            &inside,
            "client",
            &[
                "--host=127.0.0.1".into(),
                format!("--port={port}"),
                "--user=lp_user".into(),
            ],
            password,
        );
        let run = with_file(&["status"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);

        let run = with_file(&["status", "--login-path", "nosuch"]);
        refused(&run, "no login path [nosuch]", flavor);

        // Readable by others: refused when asked for by name, ignored with a warning (as the
        // mysql client does) when only read by default.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&login_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let run = with_file(&["status", "--login-path", "db2"]);
        refused(&run, "others may read", flavor);
        let run = with_file(&["status", "--replica", &replica.url()]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        assert!(
            run.stderr.contains("warning: login file") && run.stderr.contains("not used"),
            "{}",
            run.stderr
        );

        // Damaged: refused in one sentence.
        std::fs::set_permissions(&login_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bytes = std::fs::read(&login_file).unwrap();
        std::fs::write(&login_file, &bytes[..bytes.len() - 5]).unwrap();
        let run = with_file(&["status", "--login-path", "db2"]);
        refused(&run, "cannot read login file", flavor);
        assert!(!run.stderr.contains(password), "{}", run.stderr);
    }
}
