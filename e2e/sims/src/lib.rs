//! Simulators of mesos-master, mesos-agent and marathon for the end-to-end tests,
//! configured only by the real programs' flags and backed by real ZooKeeper.

pub mod agent;
pub mod flags;
pub mod http_client;
pub mod marathon;
pub mod master;
pub mod net;
pub mod resources;
pub mod zk;
pub mod zk_ensemble;
pub mod zk_url;

/// Logs to stderr at the level `--logging_level` asks for (`INFO`/`WARNING`/`ERROR`).
pub fn init_logging(level: &str, quiet: bool) {
    let filter = match level {
        "ERROR" => "error",
        "WARNING" => "warn",
        _ => "info",
    };
    if !quiet {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
                "{filter},zookeeper_client=warn"
            )))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The real programs' fail-fast exit (`EXIT(status) << message`): the message goes to
/// stderr and the log, then the process exits with `code`.
pub fn exit_with(message: &str, code: i32) -> ! {
    eprintln!("{message}");
    tracing::error!("{message}");
    std::process::exit(code)
}
