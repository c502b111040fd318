//! TLS as the mysql client does it, against real servers offering TLS with certificates made
//! here (a CA, a server certificate for IP 127.0.0.1 only, a client certificate, and a second,
//! unrelated CA): MariaDB 10.11 and MySQL 9.7.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use replmend_sandbox::ServerTls;
use support::*;

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate (subjectAltName IP:127.0.0.1, nothing else) and a client
/// certificate signed by it, and an unrelated CA.
fn make_pki(tag: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("replmend-pki-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (ca, cn) in [("ca", "replmend test CA"), ("other-ca", "unrelated CA")] {
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{ca}-key.pem"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=replmend test {name}"),
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "3",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}-cert.pem"),
            ],
        );
    }
    Pki { dir }
}

/// The run exited `code` with one sentence on stderr that says `words`.
fn refused(run: &Run, code: i32, words: &str, context: &str) {
    assert_eq!(run.code, code, "{context}: {}", run.stderr);
    assert!(one_line(run).contains(words), "{context}: {}", run.stderr);
}

fn one_line(run: &Run) -> &str {
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        !run.stderr.contains('{') && !run.stderr.contains("Error("),
        "{}",
        run.stderr
    );
    run.stderr.trim_end()
}

#[test]
fn tls_like_the_mysql_client_on_both_flavors() {
    let pki = make_pki("both");
    let tls = ServerTls {
        ca: pki.dir.join("ca.pem"),
        cert: pki.dir.join("server-cert.pem"),
        key: pki.dir.join("server-key.pem"),
    };
    for flavor in FLAVORS {
        let sb = Sandbox::start_with_tls(flavor.into(), Topology::SourceReplica, &tls)
            .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
        // Created on the source, so both nodes know the accounts (status reads the source too).
        sb.node("n1")
            .exec(
                "CREATE USER tls_user@'%' IDENTIFIED BY 'pw-ssl' REQUIRE SSL;
                 GRANT ALL ON *.* TO tls_user@'%';
                 CREATE USER x509_user@'%' IDENTIFIED BY 'pw-x509' REQUIRE X509;
                 GRANT ALL ON *.* TO x509_user@'%'",
            )
            .unwrap();
        let replica = sb.node("n2");
        replica.wait_caught_up(Duration::from_secs(30)).unwrap();
        let port = replica.port.to_string();
        let dsn = |user: &str, pw: &str, host: &str| format!("mysql://{user}:{pw}@{host}:{port}");
        let ssl = dsn("tls_user", "pw-ssl", "127.0.0.1");
        let status = |extra: &[&str]| {
            let mut args = vec!["status", "--replica", &ssl];
            args.extend_from_slice(extra);
            replmend(&args)
        };

        // A REQUIRE SSL account connects with no TLS flag: PREFERRED is the default.
        let run = status(&[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        for mode in ["PREFERRED", "REQUIRED"] {
            let run = status(&["--ssl-mode", mode]);
            assert_eq!(run.code, exit::OK, "{flavor} {mode}: {}", run.stderr);
        }

        // DISABLED: the server refuses the account, in one sentence that says why.
        let run = status(&["--ssl-mode", "DISABLED"]);
        assert_eq!(run.code, exit::ACCESS_DENIED, "{flavor}: {}", run.stderr);
        let m = one_line(&run);
        assert!(
            m.contains("access denied") && m.contains("not encrypted") && !m.contains("pw-ssl"),
            "{flavor}: {m}"
        );

        // VERIFY_CA: the right CA works; without one it is bad input, found before connecting;
        // with another CA the certificate is not trusted.
        let ca = pki.file("ca.pem");
        let other = pki.file("other-ca.pem");
        let run = status(&["--ssl-mode", "VERIFY_CA", "--ssl-ca", &ca]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        let run = status(&["--ssl-mode", "VERIFY_CA"]);
        refused(&run, 8, "needs --ssl-ca", &flavor.to_string());
        let run = status(&["--ssl-mode", "VERIFY_CA", "--ssl-ca", &other]);
        assert_eq!(run.code, exit::TLS, "{flavor}: {}", run.stderr);
        let m = one_line(&run);
        assert!(
            m.contains("TLS with tls_user@127.0.0.1") && m.contains("not signed by the CA in"),
            "{flavor}: {m}"
        );

        // VERIFY_IDENTITY: 127.0.0.1 is in the certificate's subjectAltName, localhost is not.
        let run = status(&["--ssl-mode", "VERIFY_IDENTITY", "--ssl-ca", &ca]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        let by_name = dsn("tls_user", "pw-ssl", "localhost");
        let run = replmend(&[
            "status",
            "--replica",
            &by_name,
            "--ssl-mode",
            "VERIFY_IDENTITY",
            "--ssl-ca",
            &ca,
        ]);
        refused(&run, 12, "not issued for localhost", &flavor.to_string());

        // The same from an option file, as the client's keys.
        let cnf = pki.dir.join(format!("{flavor}.cnf"));
        std::fs::write(
            &cnf,
            format!("[client]\nssl-mode = VERIFY_IDENTITY\nssl-ca = {ca}\n"),
        )
        .unwrap();
        let cnf = cnf.display().to_string();
        let run = status(&["--defaults-file", &cnf]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        let run = status(&["--defaults-file", &cnf, "--ssl-ca", &other]);
        assert_eq!(run.code, exit::TLS, "{flavor}: {}", run.stderr);

        // REQUIRE X509: the client certificate and key; without them, access denied.
        let x509 = dsn("x509_user", "pw-x509", "127.0.0.1");
        let cert = pki.file("client-cert.pem");
        let key = pki.file("client-key.pem");
        let run = replmend(&[
            "status",
            "--replica",
            &x509,
            "--ssl-cert",
            &cert,
            "--ssl-key",
            &key,
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        assert_eq!(run.json()["channels"][0]["health"], "healthy");
        let run = replmend(&["status", "--replica", &x509]);
        refused(&run, 7, "REQUIRE X509", &flavor.to_string());
        // A key that is not the certificate's: bad input, in words.
        let wrong_key = pki.file("server-key.pem");
        let run = replmend(&[
            "status",
            "--replica",
            &x509,
            "--ssl-cert",
            &cert,
            "--ssl-key",
            &wrong_key,
        ]);
        let words = "the key does not belong to the certificate";
        refused(&run, 8, words, &flavor.to_string());

        // An incident diagnosed entirely over verified TLS: the replica's status, the source
        // (reached with the replica's TLS settings) and its binlog streamed.
        sb.recipe("unique-secondary-1062")
            .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
        let run = replmend(&[
            "diagnose",
            "--replica",
            &ssl,
            "--ssl-mode",
            "VERIFY_IDENTITY",
            "--ssl-ca",
            &ca,
            "--format",
            "json",
        ]);
        assert_eq!(
            run.code,
            exit::REPLICATION_ERROR,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        let j = run.json();
        assert!(
            j.to_string().contains("1062"),
            "{flavor}: the diagnosis names the error: {j}"
        );
    }
}

#[test]
fn required_against_a_server_without_tls_and_unreadable_files() {
    // The host's MariaDB sandbox offers no TLS unless given certificates.
    let sb = Sandbox::start(Flavor::MariaDb, Topology::SourceReplica).unwrap();
    let url = sb.node("n2").url();
    let run = replmend(&["status", "--replica", &url]);
    assert_eq!(
        run.code,
        exit::OK,
        "PREFERRED falls back to plain: {}",
        run.stderr
    );
    let run = replmend(&["status", "--replica", &url, "--ssl-mode", "REQUIRED"]);
    let words = "does not offer TLS, which --ssl-mode REQUIRED demands";
    refused(&run, 12, words, "REQUIRED");

    // Files are checked before connecting: nothing listens on port 1, yet the answer is
    // bad input (8), not unreachable (6).
    let pki = make_pki("files");
    let nowhere = "mysql://root@127.0.0.1:1";
    let missing = pki.file("missing.pem");
    let key = pki.file("client-key.pem");
    for (args, words) in [
        (
            vec!["--ssl-mode", "VERIFY_CA", "--ssl-ca", missing.as_str()],
            "cannot use --ssl-ca",
        ),
        (
            vec!["--ssl-cert", missing.as_str(), "--ssl-key", key.as_str()],
            "cannot use --ssl-cert",
        ),
        (
            vec!["--ssl-mode", "VERIFY_CA", "--ssl-ca", key.as_str()],
            "holds no certificate",
        ),
    ] {
        let mut all = vec!["status", "--replica", nowhere];
        all.extend(args);
        let run = replmend(&all);
        refused(&run, 8, words, &format!("{all:?}"));
    }
    let run = replmend(&["status", "--replica", nowhere, "--ssl-mode", "sometimes"]);
    assert_eq!(run.code, exit::USAGE, "{}", run.stderr);
}
