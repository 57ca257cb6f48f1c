//! Real Apache modules in front of the IdP, each in a private apache2 on loopback (never the
//! system site): Shibboleth SP 3 (mod_shib + shibd) as a SAML SP, and mod_auth_openidc 2.4 as
//! OpenID Connect relying parties. The scripts live in tests/interop/saml/shibboleth/ and
//! tests/interop/oidc/mod_auth_openidc/.

mod openidc;
mod shibboleth;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Runs the stop script of a private Apache (and shibd) and removes its state directory when the
/// test ends, whatever happens.
struct Stopper {
    stop_script: &'static str,
    state: PathBuf,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .args(["30", "bash", self.stop_script])
            .arg(&self.state)
            .output();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A state directory that apache's www-data children can read, stopped and removed on drop.
fn state_dir(kind: &str, stop_script: &'static str) -> Stopper {
    let state = PathBuf::from(format!("/tmp/kl-{kind}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&state).unwrap();
    Stopper { stop_script, state }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `program args…` under coreutils `timeout` (killed after `limit`) on the blocking pool;
/// panics unless it exits 0, and returns the JSON of its last output line.
async fn run_bounded(limit: Duration, program: &str, args: Vec<String>) -> serde_json::Value {
    let program = program.to_owned();
    let secs = limit.as_secs().to_string();
    let out = tokio::task::spawn_blocking({
        let (program, args) = (program.clone(), args.clone());
        move || {
            Command::new("timeout")
                .args(["-k", "5", &secs, &program])
                .args(&args)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{program} printed {stdout}: {e}"))
}

fn script(rel: &str) -> String {
    format!("{}/interop/{rel}", env!("CARGO_MANIFEST_DIR"))
}
