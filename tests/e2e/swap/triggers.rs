//! The triggers of a swap: the watched `--guest` file (rename, in-place write, a ConfigMap
//! `..data` symlink swap), SIGHUP, and who may use the admin endpoints.

use serde_json::Value;
use std::time::Duration;

use task_events_tests::admin::{Admin, sha256_hex};
use task_events_tests::host::HostProcess;
use task_events_tests::http::status;
use task_events_tests::plugins::{replace_file, task_plugin_bytes, task_plugin_variant};

use super::{HOST, TOKEN, WAIT, start};

#[tokio::test]
async fn the_watch_follows_a_configmap_symlink_swap() {
    let dir = tempfile::tempdir().unwrap();
    // What the kubelet lays out for a ConfigMap volume.
    let volume = dir.path().join("volume");
    std::fs::create_dir_all(volume.join("..2025_01_01")).unwrap();
    std::fs::write(volume.join("..2025_01_01/plugin.wasm"), task_plugin_bytes()).unwrap();
    std::os::unix::fs::symlink("..2025_01_01", volume.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/plugin.wasm", volume.join("plugin.wasm")).unwrap();
    let guest = volume.join("plugin.wasm");
    let host = HostProcess::embedded(
        HOST,
        dir.path(),
        &["--guest", guest.to_str().unwrap(), "--admin-token", TOKEN],
        &[],
    )
    .await;
    let admin = Admin::new(&host.base, Some(TOKEN));

    // The kubelet's update: a new timestamped dir, a new `..data` symlink renamed into place.
    for (n, stamp) in [(1u32, "..2025_01_02"), (2, "..2025_01_03")] {
        let bytes = task_plugin_variant(n);
        std::fs::create_dir_all(volume.join(stamp)).unwrap();
        std::fs::write(volume.join(stamp).join("plugin.wasm"), &bytes).unwrap();
        std::os::unix::fs::symlink(stamp, volume.join("..data_tmp")).unwrap();
        std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
        let status = admin.wait_serving(&sha256_hex(&bytes), WAIT).await;
        assert!(
            status["current"]["origin"]
                .as_str()
                .unwrap()
                .starts_with("file "),
            "{status:#}"
        );
    }
}

#[tokio::test]
async fn the_watch_follows_rename_and_in_place_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = start(dir.path(), &["--admin-token", TOKEN]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));

    let renamed = task_plugin_variant(1);
    replace_file(&guest, &renamed);
    admin.wait_serving(&sha256_hex(&renamed), WAIT).await;

    // `cp` over the file: truncated, then written in pieces.
    let copied = task_plugin_variant(2);
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&guest).unwrap();
        for chunk in copied.chunks(512 * 1024) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    admin.wait_serving(&sha256_hex(&copied), WAIT).await;
}

#[tokio::test]
async fn sighup_reloads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = start(dir.path(), &["--admin-token", TOKEN, "--watch", "false"]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    let build = task_plugin_variant(1);
    replace_file(&guest, &build);
    host.signal("HUP");
    let status = admin.wait_serving(&sha256_hex(&build), WAIT).await;
    assert!(
        status["current"]["origin"]
            .as_str()
            .unwrap()
            .starts_with("SIGHUP"),
        "{status:#}"
    );
}

#[tokio::test]
async fn admin_endpoints_refuse_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let (host, _) = start(&dir.path().join("no-token"), &[]).await;
    for request in [
        client.get(format!("{}/admin/plugin", host.base)),
        // (A small body: a server that refuses early may close the connection mid-upload.)
        client
            .post(format!("{}/admin/plugin", host.base))
            .body(b"\0asm".to_vec()),
        client
            .post(format!("{}/admin/rollback", host.base))
            .bearer_auth("guess"),
    ] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("--admin-token"),
            "{body}"
        );
    }
    drop(host);

    let (host, _) = start(&dir.path().join("token"), &["--admin-token", TOKEN]).await;
    let url = format!("{}/admin/plugin", host.base);
    assert_eq!(status(client.get(&url)).await, 401);
    assert_eq!(
        status(client.get(&url).bearer_auth("admin-secreT")).await,
        401
    );
    assert_eq!(
        status(client.get(&url).basic_auth("admin", Some(TOKEN))).await,
        401
    );
    assert_eq!(status(client.post(&url).body(b"\0asm".to_vec())).await, 401);
    assert_eq!(status(client.get(&url).bearer_auth(TOKEN)).await, 200);
    let status = Admin::new(&host.base, Some(TOKEN)).status().await;
    assert_eq!(status["swaps"], 0, "the refused swap did nothing");
}
