//! SIGHUP without a certificate to reload is answered, not fatal: `systemctl reload` sends it
//! to every node, and by default it would end the process (and this test binary with it).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

#[tokio::test]
async fn a_hangup_without_tls_is_logged_and_the_process_goes_on() {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(doin_http::reload_on_hangup(None, shutdown));
    // The handler is installed when the task first runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..2 {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Still here, and the task ends cleanly at shutdown.
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Ok(()));
}
