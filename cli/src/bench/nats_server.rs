//! A `nats-server` child process on a free port on 127.0.0.1, for `--scenario bridge`:
//! started by the bench, killed (and reaped) when dropped, also when the run fails or
//! panics. The same recipe as `shardcast-nats/tests/common`, with errors instead of panics:
//! a server that cannot start only skips the bridge rows.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Overrides the server binary (default: `nats-server` on `PATH`, then the Debian
/// package's path).
pub const ENV_BINARY: &str = "SHARDCAST_NATS_SERVER";
/// Where the Debian/Ubuntu package installs it (`/usr/sbin` is not on every `PATH`).
const DEBIAN_PATH: &str = "/usr/sbin/nats-server";
/// How long the server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A running `nats-server -a 127.0.0.1 -p <port>`.
pub struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts connections.
    ///
    /// # Errors
    /// Why it did not start (not installed, exited at start, never listened), in words
    /// for the table.
    pub fn start() -> Result<NatsServer, String> {
        // Bind port 0, read the port the kernel chose, release it for the server.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free local port: {e}"))?
            .port();
        let child = spawn(port).map_err(|e| format!("cannot start nats-server: {e}"))?;
        // From here on, `Drop` kills the child whatever happens.
        let mut server = NatsServer { child, port };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            match server.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(format!("nats-server on port {port} exited at start: {status}"))
                }
                Ok(None) => {}
                Err(e) => return Err(format!("nats-server on port {port}: {e}")),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nats-server did not listen on port {port} within {START_DEADLINE:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // SIGKILL and reap: nothing of the server outlives the bench.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: u16) -> io::Result<Child> {
    let start = |binary: &str| {
        Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    if let Some(binary) = std::env::var_os(ENV_BINARY) {
        let binary = binary.to_string_lossy();
        return start(&binary).map_err(|e| io::Error::new(e.kind(), format!("{binary}: {e}")));
    }
    match start("nats-server") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => start(DEBIAN_PATH).map_err(|_| {
            io::Error::new(
                e.kind(),
                format!("not on PATH nor at {DEBIAN_PATH} (Debian/Ubuntu package nats-server)"),
            )
        }),
        other => other,
    }
}
