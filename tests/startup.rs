//! Starting the binary: configuration errors are one clear line naming
//! the variable, and `--help` documents every variable.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

async fn start_error(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.args(args).env_clear().stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .expect("start-up error must not hang")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Asserts a non-zero exit whose message names `var` in one line.
async fn assert_start_refused(args: &[&str], env: &[(&str, &str)], var: &str) {
    let (code, err) = start_error(args, env).await;
    assert_ne!(code, 0, "{var}: {err}");
    assert!(err.contains(var), "{err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("img-proxy:"))
            .count(),
        1,
        "{err}"
    );
}

#[tokio::test]
async fn a_cluster_role_without_cluster_secret_is_refused() {
    assert_start_refused(&["gateway"], &[("NAME", "g")], "CLUSTER_SECRET").await;
    let (_, err) = start_error(&["gateway"], &[("NAME", "g")]).await;
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn an_unreadable_duration_or_size_is_refused() {
    let env = [("CACHE_TTL", "forever"), ("CLUSTER_SECRET", SECRET)];
    assert_start_refused(&["worker"], &env, "CACHE_TTL").await;
    let (_, err) = start_error(&["worker"], &env).await;
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_start_refused(&[], &[("CACHE_MAX_BYTES", "huge")], "CACHE_MAX_BYTES").await;
}

#[tokio::test]
async fn a_zero_image_limit_is_refused() {
    for var in ["MAX_SOURCE_PIXELS", "MAX_ANIMATION_FRAMES"] {
        assert_start_refused(&[], &[(var, "0")], var).await;
    }
}

#[tokio::test]
async fn an_invalid_network_is_refused() {
    let env = [("ALLOWED_SOURCE_NETWORKS", "10.0.0.0/99")];
    assert_start_refused(&[], &env, "ALLOWED_SOURCE_NETWORKS").await;
}

#[tokio::test]
async fn a_busy_http_addr_is_refused() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    assert_start_refused(
        &[],
        &[("HTTP_ADDR", addr.as_str()), ("NAME", "n")],
        "HTTP_ADDR",
    )
    .await;
}

#[tokio::test]
async fn help_lists_every_variable_with_its_default() {
    let out = std::process::Command::new(binary())
        .args(["worker", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (var, default) in [
        ("HTTP_ADDR", "0.0.0.0:8080"),
        ("GOSSIP_ADDR", "0.0.0.0:7946"),
        ("ADVERTISE_ADDR", ""),
        ("KNOWN_HOSTS", ""),
        ("CLUSTER_SECRET", ""),
        ("NAME", ""),
        ("CACHE_MAX_BYTES", "256MiB"),
        ("CACHE_TTL", "1h"),
        ("CACHE_DIR", ""),
        ("CACHE_DISK_BYTES", "1GiB"),
        ("ADMIN_TOKEN", ""),
        ("MAX_SOURCE_BYTES", "20MiB"),
        ("FETCH_TIMEOUT", "10s"),
        ("MAX_REDIRECTS", "5"),
        ("ALLOWED_SOURCE_NETWORKS", ""),
        ("LOG_FORMAT", "text"),
        ("MAX_SOURCE_PIXELS", "50000000"),
        ("MAX_ANIMATION_FRAMES", "1000"),
        ("MAX_QUEUE", "64"),
        ("QUEUE_TIMEOUT", "5s"),
        ("GOSSIP_INTERVAL", "500ms"),
    ] {
        assert!(
            help.contains(&format!("env: {var}")),
            "{var} missing from help:\n{help}"
        );
        assert!(help.contains(default), "default {default} of {var} missing");
    }
}

/// Start-up with `CACHE_DIR` set to `dir`: must be refused in one line.
async fn assert_cache_dir_refused(dir: &std::path::Path, why: &str) {
    let dir = dir.display().to_string();
    let env = [
        ("CLUSTER_SECRET", SECRET),
        ("NAME", "w"),
        ("CACHE_DIR", dir.as_str()),
    ];
    let (code, err) = start_error(&["worker"], &env).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("CACHE_DIR") && err.contains(why), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn an_unwritable_cache_dir_exits_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // Root writes through file modes, so as root use a directory no one
    // can create files in.
    let unwritable = if is_root() {
        std::path::PathBuf::from("/proc")
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        dir.path().to_path_buf()
    };
    assert_cache_dir_refused(&unwritable, "cannot write").await;
}

#[tokio::test]
async fn a_missing_cache_dir_exits_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_cache_dir_refused(&dir.path().join("nope"), "no such directory").await;
    let dir = dir.path().display().to_string();
    let env = [("CACHE_DIR", dir.as_str()), ("CACHE_DISK_BYTES", "lots")];
    assert_start_refused(&[], &env, "CACHE_DISK_BYTES").await;
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
