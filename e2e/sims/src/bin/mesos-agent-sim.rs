//! `mesos-agent` stand-in: takes the real agent's flags (and `MESOS_*` variables).

use mesos_sims::agent::{self, config::AgentConfig};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match AgentConfig::load(args, std::env::vars().collect()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{}", e.message());
            std::process::exit(1);
        }
    };
    if cfg.flags.bool("version") {
        println!("mesos {}", mesos_sims::master::MESOS_VERSION);
        return;
    }
    mesos_sims::init_logging(
        cfg.flags.get("logging_level").unwrap_or("INFO"),
        cfg.flags.bool("quiet"),
    );
    if let Err(e) = agent::run(cfg).await {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
